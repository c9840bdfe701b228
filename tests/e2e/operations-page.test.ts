// The operations page in a real browser (Debian's chromium driven by playwright-core, no browser
// download) against the whole stack and its local OpenID Connect issuer: people sign in on the
// issuer's form (authorization code with PKCE), a refund above the approval threshold shows up on
// /ops, the person who requested it cannot approve it (four eyes, the run's own refusal), and
// someone else from finance approves it, recorded under their name. A failure keeps a screenshot
// and prints where; OPS_PAGE_SCREENSHOTS=<dir> keeps one of each step as well.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { orderIdFor } from '../../shared/checkout.ts';
import { startApiHarness, unreachableTemporalAddress } from '../api/harness.ts';
import { refundIdFor } from '../../shared/refunds.ts';
import { authorization, CARDS, postCheckout, waitForOutcome, type Caller } from '../support/checkout-client.ts';
import type { Role } from '../../shared/permissions.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

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
/** Visibility is eventually consistent: a run shows up on (and leaves) the list a little later. */
const VISIBILITY_BOUND_MS = 30_000;

type Json = Record<string, any>;

let stack: TestStack;
let browser: Browser;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-chromium.sh (or set CHROMIUM_PATH)`);
  stack = await startTestStack();
  await stack.startWorker();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Who reads refunds in these tests when nobody in particular does. */
const FINANCE_READER: Caller = ['finance', 'it-finance'];

async function call(method: 'GET' | 'POST', path: string, as: Caller, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { ...(await authorization(stack, as)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Polls GET /refunds/:id until `ready`. */
async function waitForRefund(refundId: string, ready: (view: Json) => boolean, timeoutMs = 60_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await call('GET', `/refunds/${encodeURIComponent(refundId)}`, FINANCE_READER);
    assert.equal(status, 200, JSON.stringify(body));
    if (ready(body)) return body;
    if (Date.now() > deadline) assert.fail(`refund ${refundId} never got there: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Clicks the page's Refresh until the run's row is there (`present`) or gone; returns the row. */
async function refreshUntil(page: Page, workflowId: string, present: boolean): Promise<Locator> {
  const row = page.locator(`[data-testid="run"][data-workflow-id="${workflowId}"]`);
  const deadline = Date.now() + VISIBILITY_BOUND_MS;
  for (;;) {
    await page.getByTestId('list-state').filter({ hasNotText: 'Loading' }).waitFor();
    if ((await row.count()) === (present ? 1 : 0)) return row;
    if (Date.now() > deadline) {
      assert.fail(`${workflowId} ${present ? 'never appeared on' : 'never left'} the operations page within ${VISIBILITY_BOUND_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 500));
    await page.getByTestId('refresh').click();
  }
}

/**
 * From the page's "Sign in" through the issuer's form and back: the page exchanges the code and
 * shows who is signed in. The form is the development issuer's (lib/dev-issuer.ts).
 */
async function signIn(page: Page, subject: string, roles: Role[]): Promise<void> {
  await page.getByTestId('sign-in').click();
  await page.waitForURL((url) => url.pathname === '/authorize');
  await page.locator('#subject').fill(subject);
  for (const role of roles) await page.locator(`input[name="role"][value="${role}"]`).check();
  await page.locator('#sign-in').click();
  await page.getByTestId('who').filter({ hasText: new RegExp(`^${subject}$`) }).waitFor();
}

/** With OPS_PAGE_SCREENSHOTS set, keeps a full-page screenshot of this moment there. */
async function keepScreenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.OPS_PAGE_SCREENSHOTS;
  if (dir) await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/** Runs `body` with a fresh page; on failure keeps a full-page screenshot and prints its path. */
async function withPage(name: string, body: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  try {
    await body(page);
  } catch (err) {
    const path = join(mkdtempSync(join(tmpdir(), 'ops-page-')), `${name}.png`);
    await page.screenshot({ path, fullPage: true }).then(
      () => console.error(`operations page at the failure: ${path}`),
      (shotErr: unknown) => console.error(`no screenshot: ${String(shotErr)}`),
    );
    throw err;
  } finally {
    await context.close();
  }
}

test('finance approves on the operations page a refund its requester could not approve, and it completes under their name', async () => {
  // 3 hoodies: 149.97 EUR captured, above the refund workflow's default approval threshold (100.00)
  const key = `ops-page-${Date.now().toString(36)}`;
  const started = await postCheckout(stack, key, {
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku: 'HOODIE-GREY-L', quantity: 3, unitPriceMinor: 4999 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.equal((await waitForOutcome(stack, started.body.checkoutId)).status, 'PAID');
  const orderId = orderIdFor(key);

  // sam works in support and in finance: sam may approve refunds, only not one sam requested
  const requester: Caller = [['support', 'finance'], 'sam'];
  const requested = await call('POST', '/refunds', requester, { requestId: key, orderId, amount: 'full', reason: 'parcel returned' });
  assert.equal(requested.status, 202, JSON.stringify(requested.body));
  const refundId = refundIdFor(key);
  await waitForRefund(refundId, (view) => view.status === 'AWAITING_APPROVAL');

  await withPage('four-eyes', async (page) => {
    await page.goto(`${stack.apiUrl}/ops`);
    await page.getByTestId('signed-out').waitFor();
    assert.equal(await page.getByTestId('workspace').isHidden(), true, 'nothing but the sign-in before signing in');
    await keepScreenshot(page, '1-signed-out');

    await signIn(page, 'sam', ['support', 'finance']);
    assert.equal(await page.getByTestId('who-roles').textContent(), 'support, finance');
    assert.doesNotMatch(page.url(), /[?&](code|state)=/, 'the authorization code is taken out of the address');
    const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
    assert.deepEqual(stored, { session: ['ops.accessToken'], local: [] }, 'the token lives in this tab only');

    const row = await refreshUntil(page, refundId, true);
    assert.equal(await row.getByTestId('run-order').textContent(), orderId);
    assert.equal(await row.getByTestId('run-amount').textContent(), '€149.97');
    assert.equal(await row.getByTestId('run-status').textContent(), 'AWAITING_APPROVAL');
    // finance decides refunds; only operations reads histories
    assert.equal(await row.getByRole('button', { name: 'Reject' }).count(), 1);
    assert.equal(await row.getByTestId('history-toggle').count(), 0);

    await row.getByRole('button', { name: 'Approve' }).click();
    await row.getByLabel('Reason').fill('I checked it myself');
    await row.getByTestId('action-submit').click();
    const refusal = row.getByTestId('action-error').filter({ hasText: 'four_eyes' });
    await refusal.waitFor();
    assert.match((await refusal.textContent()) ?? '', /^Refused: four_eyes: /);
    await keepScreenshot(page, '2-four-eyes');
    assert.equal((await waitForRefund(refundId, () => true)).status, 'AWAITING_APPROVAL', 'the refusal left the refund waiting');

    await page.getByTestId('sign-out').click();
    await page.getByTestId('signed-out').waitFor();
    assert.equal(await page.getByTestId('workspace').isHidden(), true);
    assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
  });

  await withPage('approve-refund', async (page) => {
    await page.goto(`${stack.apiUrl}/ops`);
    await signIn(page, 'fay', ['finance']);
    assert.equal(await page.getByTestId('who-roles').textContent(), 'finance');

    const row = await refreshUntil(page, refundId, true);
    await row.getByRole('button', { name: 'Approve' }).click();
    await row.getByLabel('Reason').fill('parcel arrived complete');
    await row.getByTestId('action-submit').click();
    await page.getByTestId('notice').filter({ hasText: `Approve accepted for ${refundId} as fay` }).waitFor();
    await keepScreenshot(page, '3-approved');

    // until the run has closed: its live state says SUCCEEDED a moment before the execution completes
    const done = await waitForRefund(refundId, (view) => view.execution?.status !== 'RUNNING');
    assert.equal(done.status, 'SUCCEEDED', JSON.stringify(done));
    assert.equal(done.execution.status, 'COMPLETED');
    assert.deepEqual(done.state.approval, { decision: 'approved', by: 'fay', reason: 'parcel arrived complete' });
    assert.equal(done.state.amountMinor, 14_997);

    await refreshUntil(page, refundId, false);
    assert.equal(await page.getByTestId('list-error').isHidden(), true);

    // a token the API no longer accepts sends the person back to the issuer's sign-in
    await page.evaluate(() => sessionStorage.setItem('ops.accessToken', 'no-longer-valid'));
    await page.reload();
    await page.waitForURL((url) => url.pathname === '/authorize');
  });

  await withPage('operations-history', async (page) => {
    await page.goto(`${stack.apiUrl}/ops`);
    await signIn(page, 'olu', ['operations']);

    // the List Filter box: every run about this order, finished ones included, with no actions left
    await page.getByLabel('List Filter').fill(`OrderId = "${orderId}"`);
    await page.getByTestId('filter-apply').click();
    const row = await refreshUntil(page, refundId, true);
    assert.equal(await row.getByTestId('run-actions').textContent(), 'no action applies now');
    assert.match(page.url(), /query=OrderId/, 'the filter is kept in the address, so a reload keeps it');

    // its story from the event history: the steps by the summaries the refund workflow gives them
    await row.getByTestId('history-toggle').click();
    const historyLine = (text: string) => row.getByTestId('run-history').getByTestId('history-line').filter({ hasText: text }).first();
    await historyLine('Scheduled: Read the payment').waitFor({ timeout: VISIBILITY_BOUND_MS });
    await historyLine('Waiting: Escalate if nobody decides within').waitFor();
    // the decision under the approver's identity, as the client identity of the update
    await historyLine('Update accepted: approve by').filter({ hasText: 'fay' }).waitFor();
    assert.equal(await row.getByTestId('history-toggle').getAttribute('aria-expanded'), 'true');
    assert.doesNotMatch((await row.getByTestId('run-history').textContent()) ?? '', /^\s*null/);
    // refreshing the list does not collapse it
    await page.getByTestId('refresh').click();
    await page.getByTestId('list-state').filter({ hasNotText: 'Loading' }).waitFor();
    await historyLine('Scheduled: Read the payment').waitFor();
    assert.equal(await row.getByTestId('history-toggle').getAttribute('aria-expanded'), 'true');
    await keepScreenshot(page, '4-history');

    // a filter Temporal cannot parse is shown as the API's 400 naming `query`
    await page.getByLabel('List Filter').fill('OrderId = = "x"');
    await page.getByTestId('filter-apply').click();
    await page.getByTestId('list-error').filter({ hasText: 'invalid_request' }).waitFor();
    assert.match((await page.getByTestId('list-error').textContent()) ?? '', /\(field: query\)/);
    assert.equal(await page.getByLabel('List Filter').getAttribute('aria-invalid'), 'true');
  });
});

test('an unreachable Temporal is shown on the page as the API names it', async () => {
  const api = await startApiHarness({ temporalAddress: await unreachableTemporalAddress() });
  try {
    await withPage('temporal-unavailable', async (page) => {
      await page.goto(`${api.baseUrl}/ops`);
      await signIn(page, 'fay', ['finance']);
      const error = page.getByTestId('list-error').filter({ hasText: 'temporal_unavailable' });
      await error.waitFor();
      assert.match((await error.textContent()) ?? '', /Cannot list runs: temporal_unavailable: Temporal is unavailable/);
      await keepScreenshot(page, '5-temporal-unavailable');
    });
  } finally {
    await api.close();
  }
});
