// The Temporal Web UI in headless Chromium, against a real dev server whose UI is pointed at our
// codec server (`--ui-codec-endpoint`, as bin/stack starts it): a run's input, encrypted by the
// client's data converter, stays ciphertext in the browser of anyone without an operator's token,
// and reads as plaintext only when the browser's codec calls carry one. In production the UI adds
// the signed-in user's access token itself (TEMPORAL_CODEC_PASS_ACCESS_TOKEN, https only); here a
// Playwright route adds it. Screenshots of each view are kept and their paths printed.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { temporalDataConverter } from '../../lib/data-converter.ts';
import { EncryptionCodec } from '../../lib/payload-codec.ts';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import type { Role } from '../../shared/permissions.ts';
import { startApiHarness, type ApiHarness } from '../api/harness.ts';
import { TEST_KEY_RING } from '../support/payload-keys.ts';

/** Installed by scripts/install-chromium.sh (run by bin/test); CHROMIUM_PATH overrides. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The UI's first page load waits for the dev server's UI to warm up, then for the codec. */
const UI_BOUND_MS = 30_000;
/** No queue of ours: nobody runs the workflow, its input is all the page needs. */
const IDLE_QUEUE = 'web-ui-codec-test-no-worker';
/** What the UI shows above a run when its codec calls fail (Web UI 2.54, `data-encoder.codec-server-error`). */
const CODEC_FAILED_BANNER = 'Codec Server could not connect';
/** A card number (PAN) anywhere in a page's text, digits not part of a longer run. */
const CARD_NUMBER = /(?<!\d)\d{12,19}(?!\d)/;

let temporal: DevServer;
let api: ApiHarness;
let connection: Connection;
let client: Client;
let browser: Browser;
let codecUrl: string;
const screenshots = mkdtempSync(join(tmpdir(), 'web-ui-codec-'));

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-chromium.sh (or set CHROMIUM_PATH)`);
  // The UI's origin and the API's address must be known before either starts: the API lets the
  // UI's origin call /codec, and the dev server tells the UI where /codec is.
  // Free ports are only free when asked: another test process may take one before the dev server
  // binds it (it then exits at start). Tried again on fresh ports, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    const uiPort = await freePort();
    const temporalPort = await freePort();
    api = await startApiHarness({
      temporalAddress: `127.0.0.1:${temporalPort}`,
      payloadCodec: new EncryptionCodec(TEST_KEY_RING),
      codecCorsOrigins: [`http://127.0.0.1:${uiPort}`],
    });
    codecUrl = `${api.baseUrl}/codec`;
    try {
      temporal = await startDevServer({ port: temporalPort, uiPort, uiCodecEndpoint: codecUrl });
      break;
    } catch (err) {
      await api.close();
      if (attempt === 3) throw err;
    }
  }
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: 'default', dataConverter: temporalDataConverter(TEST_KEY_RING) });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await connection?.close();
  await api?.close();
  await temporal?.stop();
});

interface View {
  /** The run's page as the browser rendered it. */
  text: string;
  /** The Input card's text. */
  input: string;
  /** HTTP status of every codec call the page made. */
  codecStatuses: number[];
  screenshot: string;
}

interface Expected {
  /** Text the Input card shows once the page has its codec answer. */
  input: string;
  /** Text elsewhere on the page by then (e.g. the codec failure banner). */
  page?: string;
}

/**
 * Opens the run's page in a fresh browser, its codec calls carrying a token for `role` when one is
 * given, and waits (bounded) until the codec has answered and the page shows `expected`. Keeps a
 * full-page screenshot either way.
 */
async function viewRun(name: string, workflowId: string, role: Role | null, expected: Expected): Promise<View> {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const codecStatuses: number[] = [];
  // a call the browser refused (CORS) has no status, only an error
  const codecFailures: string[] = [];
  page.on('response', (response) => {
    if (response.url().startsWith(`${codecUrl}/`)) codecStatuses.push(response.status());
  });
  page.on('requestfailed', (request) => {
    if (request.url().startsWith(`${codecUrl}/`)) codecFailures.push(request.failure()?.errorText ?? 'failed');
  });
  if (role) {
    const token = await api.tokenFor(role, `${role}-viewer`);
    await page.route(`${codecUrl}/**`, (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${token}` } }),
    );
  }
  const screenshot = join(screenshots, `${name}.png`);
  try {
    await page.goto(`${temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const input = page.getByTestId('input-and-result');
    const why = (what: string) =>
      `${what} (${name}; codec answers so far: ${[...codecStatuses, ...codecFailures].join(', ') || 'none'})`;
    await waitForText(page, input, expected.input, why(`the Input card never showed ${JSON.stringify(expected.input)}`));
    if (expected.page) await waitForText(page, page.locator('body'), expected.page, why(`the page never showed ${JSON.stringify(expected.page)}`));
    const deadline = Date.now() + UI_BOUND_MS;
    while (codecStatuses.length === 0) {
      if (Date.now() > deadline) assert.fail(why(`no answer from the codec at ${codecUrl} reached the UI within ${UI_BOUND_MS} ms`));
      await page.waitForTimeout(200);
    }
    return { text: await page.locator('body').innerText(), input: await input.innerText(), codecStatuses, screenshot };
  } finally {
    await page.screenshot({ path: screenshot, fullPage: true }).then(
      () => console.log(`Web UI, ${name}: ${screenshot}`),
      (err: unknown) => console.error(`no screenshot of ${name}: ${String(err)}`),
    );
    await context.close();
  }
}

async function waitForText(page: Page, locator: Locator, text: string, failure: string): Promise<void> {
  try {
    await locator.filter({ hasText: text }).waitFor({ timeout: UI_BOUND_MS });
  } catch (err) {
    const shown = await page.locator('body').innerText().catch(() => '(page unreadable)');
    assert.fail(`${failure} within ${UI_BOUND_MS} ms: ${(err as Error).message.split('\n')[0]}\npage text:\n${shown.slice(0, 2_000)}`);
  }
}

/** The started event's input exactly as the cluster stores it: base64 of the ciphertext. */
async function storedInput(workflowId: string): Promise<{ encoding: string; data: string }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  assert.ok(payload?.data, `${workflowId} has no input payload`);
  return {
    encoding: Buffer.from(payload.metadata?.encoding ?? []).toString('utf8'),
    data: Buffer.from(payload.data).toString('base64'),
  };
}

test("the Web UI shows a run's input encrypted, and decrypted only when the codec calls carry an operator's token", async () => {
  const marker = `codec-marker-${Date.now().toString(36)}`;
  const workflowId = `web-ui-codec-${process.pid}-${Date.now().toString(36)}`;
  await client.workflow.start('checkout', {
    taskQueue: IDLE_QUEUE,
    workflowId,
    // as a checkout carries a card: the provider's token and the last four digits, never the number
    args: [{ note: marker, paymentMethod: { token: 'pm_test_visa', brand: 'visa', last4: '4242' } }],
  });
  const stored = await storedInput(workflowId);
  assert.equal(stored.encoding, 'binary/encrypted', 'the client encrypted the input');

  // Nobody signed in: the UI asks the codec, is refused (401), and shows what the cluster holds.
  const anonymous = await viewRun('1-no-token', workflowId, null, { input: stored.data, page: CODEC_FAILED_BANNER });
  assert.ok(anonymous.codecStatuses.includes(401), `the UI asked the codec and was refused: ${anonymous.codecStatuses.join(', ')}`);
  assert.ok(!anonymous.text.includes(marker), 'without a token the input is not readable on the page');

  // Signed in, but support may not decode: 403, still ciphertext.
  const support = await viewRun('2-support-token', workflowId, 'support', { input: stored.data, page: CODEC_FAILED_BANNER });
  assert.ok(support.codecStatuses.includes(403), `support is refused by the codec: ${support.codecStatuses.join(', ')}`);
  assert.ok(!support.text.includes(marker), 'support does not read the input');

  // An operator's token on the codec calls: the input reads as the client wrote it.
  const operator = await viewRun('3-operations-token', workflowId, 'operations', { input: marker });
  assert.ok(operator.codecStatuses.length > 0 && operator.codecStatuses.every((status) => status === 200), `codec answers: ${operator.codecStatuses.join(', ')}`);
  assert.match(operator.input, /"last4": "4242"/);
  assert.ok(!operator.text.includes(stored.data), 'the ciphertext is replaced by the plaintext');
  assert.ok(!operator.text.includes(CODEC_FAILED_BANNER), 'no codec failure is reported');

  for (const [name, view] of Object.entries({ anonymous, support, operator })) {
    assert.doesNotMatch(view.text, CARD_NUMBER, `no card number on the page (${name})`);
  }
});
