// The operations page in a real browser (Debian's chromium driven by playwright-core, no browser
// download) against the whole stack: a refund above the approval threshold shows up on /ops with
// its history, an operator approves it there, and the refund workflow pays the money back with the approval
// recorded under that operator's name. A failure keeps a screenshot and prints where.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { orderIdFor } from '../../shared/checkout.ts';
import { startApiHarness, unreachableTemporalAddress } from '../api/harness.ts';
import { refundIdFor } from '../../shared/refunds.ts';
import { CARDS, postCheckout, waitForOutcome } from '../support/checkout-client.ts';
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

async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Polls GET /refunds/:id until `ready`. */
async function waitForRefund(refundId: string, ready: (view: Json) => boolean, timeoutMs = 60_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await call('GET', `/refunds/${encodeURIComponent(refundId)}`);
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

test('an operator approves a pending refund on the operations page and the refund completes under their name', async () => {
  // 3 hoodies: 149.97 EUR captured, above the refund workflow's default approval threshold (100.00)
  const key = `ops-page-${Date.now().toString(36)}`;
  const started = await postCheckout(stack.apiUrl, key, {
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku: 'HOODIE-GREY-L', quantity: 3, unitPriceMinor: 4999 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.equal((await waitForOutcome(stack.apiUrl, started.body.checkoutId)).status, 'PAID');
  const orderId = orderIdFor(key);

  const requested = await call('POST', '/refunds', { requestId: key, orderId, amount: 'full', reason: 'parcel returned', requestedBy: 'customer-service' });
  assert.equal(requested.status, 202, JSON.stringify(requested.body));
  const refundId = refundIdFor(key);
  await waitForRefund(refundId, (view) => view.status === 'AWAITING_APPROVAL');

  await withPage('approve-refund', async (page) => {
    await page.goto(`${stack.apiUrl}/ops`);
    // asked once, then remembered in localStorage
    await page.getByLabel('Your name').fill('Ada Operator');
    await page.getByTestId('operator-save').click();
    await page.getByTestId('operator-label').filter({ hasText: 'Ada Operator' }).waitFor();
    await page.reload();
    assert.equal(await page.getByTestId('operator-label').textContent(), 'Ada Operator');

    const row = await refreshUntil(page, refundId, true);
    assert.equal(await row.getByTestId('run-order').textContent(), orderId);
    assert.equal(await row.getByTestId('run-amount').textContent(), '€149.97');
    assert.equal(await row.getByTestId('run-status').textContent(), 'AWAITING_APPROVAL');
    assert.equal(await row.getByRole('button', { name: 'Reject' }).count(), 1);

    // its story from the event history: the steps by the summaries the refund workflow gives them
    await row.getByTestId('history-toggle').click();
    const historyLine = (text: string) => row.getByTestId('run-history').getByTestId('history-line').filter({ hasText: text }).first();
    await historyLine('Scheduled: Read the payment').waitFor({ timeout: VISIBILITY_BOUND_MS });
    // the wait for a decision; an open history reloads with each refresh, so a late line shows up
    await historyLine('Waiting: Escalate if nobody decides within').waitFor({ timeout: VISIBILITY_BOUND_MS });
    assert.equal(await row.getByTestId('history-toggle').getAttribute('aria-expanded'), 'true');
    // refreshing the list does not collapse it
    await page.getByTestId('refresh').click();
    await page.getByTestId('list-state').filter({ hasNotText: 'Loading' }).waitFor();
    await historyLine('Waiting: Escalate if nobody decides within').waitFor();
    assert.equal(await row.getByTestId('history-toggle').getAttribute('aria-expanded'), 'true');

    await row.getByRole('button', { name: 'Approve' }).click();
    await row.getByLabel('Reason').fill('parcel arrived complete');
    await row.getByTestId('action-submit').click();
    await page.getByTestId('notice').filter({ hasText: `Approve sent for ${refundId}` }).waitFor();

    // until the run has closed: its live state says SUCCEEDED a moment before the execution completes
    const done = await waitForRefund(refundId, (view) => view.execution?.status !== 'RUNNING');
    assert.equal(done.status, 'SUCCEEDED', JSON.stringify(done));
    assert.equal(done.execution.status, 'COMPLETED');
    assert.deepEqual(done.state.approval, { decision: 'approved', by: 'Ada Operator', reason: 'parcel arrived complete' });
    assert.equal(done.state.amountMinor, 14_997);

    await refreshUntil(page, refundId, false);
    assert.equal(await page.getByTestId('list-error').isHidden(), true);

    // the List Filter box: every run about this order, finished ones included, with no actions left
    await page.getByLabel('List Filter').fill(`OrderId = "${orderId}"`);
    await page.getByTestId('filter-apply').click();
    const refundRow = await refreshUntil(page, refundId, true);
    assert.equal(await refundRow.getByTestId('run-actions').textContent(), 'no action applies now');
    assert.match(page.url(), /query=OrderId/, 'the filter is kept in the address, so a reload keeps it');

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
      const error = page.getByTestId('list-error').filter({ hasText: 'temporal_unavailable' });
      await error.waitFor();
      assert.match((await error.textContent()) ?? '', /Cannot list runs: temporal_unavailable: Temporal is unavailable/);
    });
  } finally {
    await api.close();
  }
});
