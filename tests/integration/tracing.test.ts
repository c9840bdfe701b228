// One trace per checkout, on real parts: the API's request span, the workflow and its activities
// (Temporal's OpenTelemetry interceptors), the activities' calls into the services and the
// services' database queries (Prisma) all share the trace id the API request started.
// The whole stack runs in this process, so one in-memory exporter sees every span.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { installTracing } from '../../lib/telemetry.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { CARDS, postCheckout, waitForOutcome } from '../support/checkout-client.ts';

const exporter = new InMemorySpanExporter();
const tracing = installTracing({ serviceName: 'tracing-test', exporter });

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
  await stack.startWorker();
});
after(async () => {
  await stack.stop();
  await tracing.shutdown();
});

async function paidCheckout(key: string): Promise<string> {
  const started = await postCheckout(stack, key, {
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const outcome = await waitForOutcome(stack, started.body.checkoutId);
  assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
  return started.body.checkoutId as string;
}

/** The trace of the POST /checkouts that started `checkoutId`, once its workflow span is exported too. */
async function traceOfCheckout(checkoutId: string): Promise<ReadableSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const spans = exporter.getFinishedSpans();
    const start = spans.find((s) => s.name === 'StartWorkflow:checkout' && s.attributes.temporalWorkflowId === checkoutId);
    const traceId = start?.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    if (start && inTrace.some((s) => s.name === 'RunWorkflow:checkout')) return inTrace;
    if (Date.now() > deadline) assert.fail(`no complete trace for ${checkoutId}: ${spans.map((s) => s.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const SERVICES = ['orders', 'inventory', 'coupons', 'loyalty', 'payments', 'psp'];

test('a paid checkout is one trace from POST /checkouts through the workflow and its activities into the services and their queries', async () => {
  const checkoutId = await paidCheckout('trace-paid-1');
  const spans = await traceOfCheckout(checkoutId);
  const names = spans.map((s) => s.name);

  const apiSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes['commerce.service'] === 'api');
  assert.ok(apiSpan, `no API server span in ${names.join(', ')}`);
  assert.equal(apiSpan.name, 'POST /checkouts');
  assert.equal(apiSpan.attributes['http.response.status_code'], 202);
  assert.equal(apiSpan.parentSpanId, undefined, 'the API request starts the trace');

  assert.ok(names.includes('RunWorkflow:checkout'), names.join(', '));
  assert.ok(names.includes('RunActivity:createOrder'), names.join(', '));
  assert.ok(names.includes('RunActivity:capturePayment'), names.join(', '));
  assert.ok(spans.some((s) => s.kind === SpanKind.CLIENT && s.name === 'POST orders'), names.join(', '));

  const serviceSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.name === 'POST /orders');
  assert.ok(serviceSpan, `no orders server span in ${names.join(', ')}`);
  assert.equal(serviceSpan.attributes['commerce.service'], 'orders');
  assert.ok(spans.filter((s) => s.kind === SpanKind.SERVER).every((s) => [...SERVICES, 'api'].includes(String(s.attributes['commerce.service']))));
  assert.ok(names.some((n) => n.startsWith('prisma:')), `no Prisma span in ${names.join(', ')}`);
  // the hops are parent and child, not merely in the same trace
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const parentOf = (s: ReadableSpan) => (s.parentSpanId === undefined ? undefined : byId.get(s.parentSpanId));
  assert.equal(parentOf(spans.find((s) => s.name === 'StartWorkflow:checkout')!), apiSpan);
  const client = parentOf(serviceSpan);
  assert.equal(client?.kind, SpanKind.CLIENT);
  assert.match(parentOf(client!)?.name ?? '', /^RunActivity:/);
  const ancestors = (s: ReadableSpan) => {
    const found: ReadableSpan[] = [];
    for (let p = parentOf(s); p; p = parentOf(p)) found.push(p);
    return found;
  };
  assert.ok(
    spans.some((s) => s.name.startsWith('prisma:') && ancestors(s).includes(serviceSpan)),
    'the orders service queries under its server span',
  );
  assert.ok(ancestors(serviceSpan).some((s) => s.name === 'RunWorkflow:checkout'));
  // payments calls the provider (simulator) with the trace too
  assert.ok(spans.some((s) => s.kind === SpanKind.SERVER && s.attributes['commerce.service'] === 'psp'), names.join(', '));
});

test('two checkouts are two traces', async () => {
  const [first, second] = await Promise.all([paidCheckout('trace-two-1'), paidCheckout('trace-two-2')]);
  const [a, b] = await Promise.all([traceOfCheckout(first), traceOfCheckout(second)]);
  const traceIdOf = (spans: ReadableSpan[]) => spans[0]!.spanContext().traceId;
  assert.notEqual(traceIdOf(a), traceIdOf(b));
  for (const spans of [a, b]) {
    const runs = spans.filter((s) => s.name === 'RunWorkflow:checkout');
    assert.equal(runs.length, 1, 'exactly one checkout run in each trace');
  }
});
