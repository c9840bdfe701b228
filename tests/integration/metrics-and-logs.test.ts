// Metrics and logs on real parts: the API's /metrics (HTTP durations, webhook events by outcome,
// workflow starts) and the worker process's /metrics (the SDK's worker metrics and the business
// counters the workflow interceptors emit), scraped after checkouts run by that process; and the
// worker process's JSON log lines, which name the workflow, run, order and trace.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../../lib/temporal-dev-server.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { CARDS, postCheckout, waitForOutcome } from '../support/checkout-client.ts';
import { authFor } from '../support/service-keys.ts';

let stack: TestStack;
let workerMetricsUrl: string;
/** Everything the worker process wrote to stdout once it was ready. */
const workerLines: string[] = [];

before(async () => {
  stack = await startTestStack();
  const port = await freePort();
  workerMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  // The only worker: the checkout below runs in this process, whose runtime serves the metrics.
  const worker = await stack.spawnWorkerProcess({ WORKER_METRICS_ADDRESS: `127.0.0.1:${port}` });
  let partial = '';
  worker.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split('\n');
    partial = complete.pop()!;
    workerLines.push(...complete.filter(Boolean));
  });

  // one paid and one declined checkout (which runs its compensations)
  for (const [key, card, status] of [
    ['metrics-paid-1', CARDS.approve, 'PAID'],
    ['metrics-declined-1', CARDS.declined, 'CANCELLED'],
  ] as const) {
    const started = await postCheckout(stack, key, {
      customerId: 'cust-bob',
      currency: 'EUR',
      lines: [{ sku: 'STICKER-PACK', quantity: 1, unitPriceMinor: 399 }],
      paymentMethod: { type: 'card', number: card },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const outcome = await waitForOutcome(stack, started.body.checkoutId);
    assert.equal(outcome.status, status, JSON.stringify(outcome));
  }
});
after(() => stack.stop());

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

/** The value of the sample `name{labels}` (labels in any order), or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = new Map([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present.get(k) === v)) return Number(match[3]);
  }
  return undefined;
}

test('the API counts checkouts started, webhook events by outcome and request durations by route', async () => {
  const forged = await fetch(`${stack.apiUrl}/webhooks/psp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'psp-signature': 't=1700000000,v1=deadbeef' },
    body: JSON.stringify({ id: 'evt_forged_metrics' }),
  });
  assert.equal(forged.status, 401);

  const text = await scrape(`${stack.apiUrl}/metrics`);
  assert.equal(sample(text, 'commerce_api_workflow_starts_total', { workflow_type: 'checkout' }), 2, text);
  assert.equal(sample(text, 'commerce_webhook_events_total', { outcome: 'invalid_signature' }), 1, text);
  // the provider's own notifications about this checkout's payment, verified and passed on
  assert.ok((sample(text, 'commerce_webhook_events_total', { outcome: 'signaled' }) ?? 0) >= 1, text);
  assert.equal(
    sample(text, 'commerce_http_request_duration_seconds_count', { service: 'api', method: 'POST', route: '/checkouts', status: '202' }),
    2,
    text,
  );
  assert.ok(sample(text, 'commerce_http_request_duration_seconds_count', { service: 'api', method: 'GET', route: '/checkouts/:id', status: '200' }));
  // the services share this process in the test stack; their requests are counted by service and route
  assert.ok(sample(text, 'commerce_http_request_duration_seconds_count', { service: 'orders', method: 'POST', route: '/orders' }), text);
});

test('the worker serves the SDK worker metrics and the business counters: checkouts by outcome, compensations run', async () => {
  // The runtime exports on its own schedule; wait for the checkouts' counters to appear.
  const deadline = Date.now() + 15_000;
  let text = '';
  while (Date.now() < deadline) {
    text = await scrape(workerMetricsUrl);
    if (sample(text, 'commerce_checkouts_completed_total', { outcome: 'cancelled' }) !== undefined) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(sample(text, 'commerce_checkouts_started_total', { workflowType: 'checkout' }), 2, text);
  assert.equal(sample(text, 'commerce_checkouts_completed_total', { outcome: 'paid' }), 1, text);
  assert.equal(sample(text, 'commerce_checkouts_completed_total', { outcome: 'cancelled' }), 1, text);
  // the declined checkout undid its order and its reservation; the paid one ran no compensation
  assert.equal(sample(text, 'commerce_compensations_run_total', { compensation: 'cancelOrder' }), 1, text);
  assert.equal(sample(text, 'commerce_compensations_run_total', { compensation: 'releaseStock' }), 1, text);
  assert.equal(sample(text, 'commerce_checkout_duration_ms_count', { outcome: 'paid' }), 1, text);
  assert.ok((sample(text, 'temporal_workflow_completed', { workflow_type: 'checkout' }) ?? 0) >= 1, text);
  assert.ok(sample(text, 'temporal_activity_execution_latency_count', { activity_type: 'capturePayment' }), text);
});

test('the worker process logs JSON lines naming the workflow, run, order and trace', async () => {
  // The orders service fails for a while: the SDK logs the failed createOrder attempt, then the retry succeeds.
  const faults = (body: object) =>
    fetch(`${stack.serviceUrls.orders}/_faults`, { method: 'PUT', headers: { ...authFor('orders'), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await faults({ errorRate: 1 })).status, 200);
  const started = await postCheckout(stack, 'logs-retry-1', {
    customerId: 'cust-bob',
    currency: 'EUR',
    lines: [{ sku: 'STICKER-PACK', quantity: 1, unitPriceMinor: 399 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const failedAttempt = () =>
    workerLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.activityType === 'createOrder' && l.level === 'warn');
  const deadline = Date.now() + 15_000;
  while (!failedAttempt() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await faults({ errorRate: 0 })).status, 200);
  assert.equal((await waitForOutcome(stack, started.body.checkoutId)).status, 'PAID');

  for (const line of workerLines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
  const line = failedAttempt();
  assert.ok(line, workerLines.join('\n'));
  assert.equal(line.service, 'worker');
  assert.equal(line.workflowId, started.body.checkoutId);
  assert.equal(line.orderId, started.body.orderId);
  assert.match(String(line.runId), /^[0-9a-f-]{36}$/);
  assert.match(String(line.traceId), /^[0-9a-f]{32}$/);
  assert.match(String(line.spanId), /^[0-9a-f]{16}$/);
});
