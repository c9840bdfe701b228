// Refunds end to end on real parts: a PAID checkout made through the API, then refunds through
// POST /refunds against the real services, the PSP simulator and its webhooks. Assertions read
// the services' own tables: the order, the provider's REFUND transactions, stock, points, coupon.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { orderIdFor } from '../../shared/checkout.ts';
import { refundIdFor } from '../../shared/refunds.ts';
import { authorization, CARDS, postCheckout, waitForOutcome, type Caller } from '../support/checkout-client.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { authFor } from '../support/service-keys.ts';

let stack: TestStack;
let worker: Worker;
before(async () => {
  stack = await startTestStack();
  worker = await stack.startWorker();
});
after(() => stack.stop());

type Json = Record<string, any>;

/** Support requests and reads refunds; finance decides and intervenes (never on its own request). */
const SUPPORT: Caller = ['support', 'sup-sam'];
const FINANCE_ANNA: Caller = ['finance', 'fin-anna'];
const FINANCE_BEN: Caller = ['finance', 'fin-ben'];

async function call(method: 'GET' | 'POST', path: string, body?: unknown, as: Caller = SUPPORT): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { ...(await authorization(stack, as)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** A PAID checkout through the API; returns its order id. */
async function paidOrder(key: string, customerId: string, lines: { sku: string; quantity: number; unitPriceMinor: number }[], couponCode?: string) {
  const started = await postCheckout(stack, key, {
    customerId,
    currency: 'EUR',
    lines,
    ...(couponCode ? { couponCode } : {}),
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const outcome = await waitForOutcome(stack, started.body.checkoutId);
  assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
  return orderIdFor(key);
}

async function postRefund(body: Json) {
  return call('POST', '/refunds', { reason: 'customer return', ...body });
}

const FINAL = ['SUCCEEDED', 'REFUNDED_MANUALLY', 'REJECTED', 'ABANDONED', 'FAILED'];

/** Polls GET /refunds/:id until `ready` (by default: the refund has finished). */
async function waitForRefund(refundId: string, ready = (view: Json) => FINAL.includes(view.status), timeoutMs = 60_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await call('GET', `/refunds/${encodeURIComponent(refundId)}`);
    assert.equal(status, 200, JSON.stringify(body));
    if (ready(body)) return body;
    if (Date.now() > deadline) assert.fail(`refund ${refundId} never got there: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function providerRefunds(orderId: string) {
  const payments = await stack.database.db.pspPayment.findMany({ where: { merchantReference: orderId }, include: { transactions: true } });
  return payments.flatMap((p) => p.transactions).filter((t) => t.type === 'REFUND');
}

async function facts(orderId: string, customerId: string, sku: string) {
  const order = await stack.database.db.order.findUniqueOrThrow({ where: { id: orderId } });
  const stock = await stack.database.db.stockItem.findUniqueOrThrow({ where: { sku } });
  const loyalty = await stack.database.db.loyaltyAccount.findUnique({ where: { customerId } });
  return { order, onHand: stock.onHand, points: loyalty?.points ?? 0 };
}

/** The provider's webhook about a refund, as POST /webhooks/psp recorded it (reference = our refund id). */
async function refundEvent(refundId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [event] = await stack.database.db.webhookEvent.findMany({ where: { orderId: refundId, type: { startsWith: 'refund.' } } });
    if (event?.signalOutcome) return event;
    if (Date.now() > deadline) assert.fail(`no refund webhook recorded for ${refundId}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function chaos(settings: Json | null) {
  const res = await fetch(`${stack.serviceUrls.psp}/v1/chaos`, {
    method: settings ? 'PUT' : 'DELETE',
    headers: { ...authFor('psp'), 'content-type': 'application/json' },
    body: settings ? JSON.stringify(settings) : undefined,
  });
  assert.ok(res.ok, `chaos: ${res.status} ${await res.text()}`);
}

test('a partial then a full refund: order status, provider refunds, restock, points in proportion, coupon back', async () => {
  await stack.database.db.coupon.create({ data: { code: 'RF-ALICE-5', customerId: 'cust-alice', kind: 'FIXED', value: 500, currency: 'EUR' } });
  const loyaltyBefore = (await stack.database.db.loyaltyAccount.findUnique({ where: { customerId: 'cust-alice' } }))?.points ?? 0;
  const orderId = await paidOrder(
    'rf-partial-full',
    'cust-alice',
    [
      { sku: 'TSHIRT-RED-M', quantity: 2, unitPriceMinor: 1999 },
      { sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 },
    ],
    'RF-ALICE-5',
  );
  // total 5297 − 500 = 4797 captured; 47 points awarded
  const paid = await facts(orderId, 'cust-alice', 'MUG-LOGO');
  assert.equal(paid.order.totalMinor, 4797);
  assert.equal(paid.points, loyaltyBefore + 47);

  const partial = await postRefund({ requestId: 'rf-partial', orderId, amount: 1299, restock: [{ sku: 'MUG-LOGO', quantity: 1 }] });
  assert.equal(partial.status, 202, JSON.stringify(partial.body));
  assert.equal(partial.body.refundId, refundIdFor('rf-partial'));
  const again = await postRefund({ requestId: 'rf-partial', orderId, amount: 1299, restock: [{ sku: 'MUG-LOGO', quantity: 1 }] });
  assert.equal(again.body.refundId, partial.body.refundId, 'a repeated request id is the same refund');
  const different = await postRefund({ requestId: 'rf-partial', orderId, amount: 1000 });
  assert.equal(different.status, 422, JSON.stringify(different.body));

  const partialDone = await waitForRefund(partial.body.refundId);
  assert.equal(partialDone.status, 'SUCCEEDED', JSON.stringify(partialDone));
  // floor(47 × 1299 / 4797) = 12
  assert.deepEqual(partialDone.state.effects, { restocked: true, pointsReversed: 12, couponReturned: false, orderStatus: 'PARTIALLY_REFUNDED' });
  // the provider's refund.succeeded webhook is recorded under our refund id and nudged the workflow
  const event = await refundEvent(partial.body.refundId);
  assert.equal(event.type, 'refund.succeeded');
  assert.equal(event.signalOutcome, 'signaled');
  const afterPartial = await facts(orderId, 'cust-alice', 'MUG-LOGO');
  assert.equal(afterPartial.order.status, 'PARTIALLY_REFUNDED');
  assert.equal(afterPartial.order.refundedMinor, 1299);
  assert.equal(afterPartial.onHand, paid.onHand + 1);
  assert.equal(afterPartial.points, paid.points - 12);
  assert.equal((await stack.database.db.coupon.findUniqueOrThrow({ where: { code: 'RF-ALICE-5' } })).status, 'REDEEMED');

  const tshirtBefore = (await facts(orderId, 'cust-alice', 'TSHIRT-RED-M')).onHand;
  const full = await postRefund({ requestId: 'rf-full', orderId, amount: 'full', restock: [{ sku: 'TSHIRT-RED-M', quantity: 2 }] });
  assert.equal(full.status, 202, JSON.stringify(full.body));
  const fullDone = await waitForRefund(full.body.refundId);
  assert.equal(fullDone.status, 'SUCCEEDED', JSON.stringify(fullDone));
  assert.equal(fullDone.state.amountMinor, 3498);
  assert.deepEqual(fullDone.state.effects, { restocked: true, pointsReversed: 35, couponReturned: true, orderStatus: 'REFUNDED' });

  const afterFull = await facts(orderId, 'cust-alice', 'TSHIRT-RED-M');
  assert.equal(afterFull.order.status, 'REFUNDED');
  assert.equal(afterFull.order.refundedMinor, 4797);
  assert.equal(afterFull.onHand, tshirtBefore + 2);
  assert.equal(afterFull.points, loyaltyBefore, 'every awarded point reversed');
  assert.equal((await stack.database.db.coupon.findUniqueOrThrow({ where: { code: 'RF-ALICE-5' } })).status, 'AVAILABLE');
  const refunds = await providerRefunds(orderId);
  assert.deepEqual(refunds.map((t) => t.amountMinor).sort((a, b) => a - b), [1299, 3498]);
});

test('five concurrent refunds summing above the capture: exactly the captured amount is refunded, the rest refused', async () => {
  const orderId = await paidOrder('rf-concurrent', 'cust-bob', [{ sku: 'TSHIRT-RED-M', quantity: 2, unitPriceMinor: 1999 }]);
  const pointsPaid = (await facts(orderId, 'cust-bob', 'TSHIRT-RED-M')).points;
  const started = await Promise.all(
    [1, 2, 3, 4, 5].map((n) => postRefund({ requestId: `rf-concurrent-${n}`, orderId, amount: 1999 })),
  );
  for (const s of started) assert.equal(s.status, 202, JSON.stringify(s.body));
  const outcomes = await Promise.all(started.map((s) => waitForRefund(s.body.refundId)));
  const succeeded = outcomes.filter((o) => o.status === 'SUCCEEDED');
  const refused = outcomes.filter((o) => o.status !== 'SUCCEEDED');
  assert.equal(succeeded.length, 2, JSON.stringify(outcomes.map((o) => [o.status, o.state?.failure])));
  for (const o of refused) {
    assert.equal(o.status, 'REJECTED');
    assert.match(o.state.failure, /refund_exceeds_captured/);
  }
  const refunds = await providerRefunds(orderId);
  assert.equal(refunds.reduce((sum, t) => sum + t.amountMinor, 0), 3998, 'exactly the captured amount');
  const now = await facts(orderId, 'cust-bob', 'TSHIRT-RED-M');
  assert.equal(now.order.status, 'REFUNDED');
  assert.equal(now.order.refundedMinor, 3998);
  assert.equal(now.points, pointsPaid - 39, 'all 39 points reversed, once');
});

test('a refund above the approval threshold waits for an operator and goes through once approved via the API', async () => {
  const orderId = await paidOrder('rf-approval', 'cust-bob', [{ sku: 'HOODIE-GREY-L', quantity: 3, unitPriceMinor: 4999 }]);
  const started = await postRefund({ requestId: 'rf-approval', orderId, amount: 'full' });
  const refundId = started.body.refundId;
  const waiting = await waitForRefund(refundId, (v) => v.status === 'AWAITING_APPROVAL');
  assert.equal(waiting.state.amountMinor, 14997);
  assert.equal((await providerRefunds(orderId)).length, 0, 'nothing asked of the provider before approval');

  const wrong = await call('POST', `/refunds/${refundId}/retry`, { reason: 'not stuck' }, FINANCE_ANNA);
  assert.equal(wrong.status, 409, JSON.stringify(wrong.body));
  assert.equal(wrong.body.error.code, 'not_waiting_for_operator', 'the run\'s own reason');
  const invalid = await call('POST', `/refunds/${refundId}/approve`, {}, FINANCE_ANNA);
  assert.equal(invalid.status, 400);
  const bySupport = await call('POST', `/refunds/${refundId}/approve`, { reason: 'looks fine' }, SUPPORT);
  assert.equal(bySupport.status, 403, 'support requests refunds; it does not approve them');

  const approved = await call('POST', `/refunds/${refundId}/approve`, { reason: 'receipt checked' }, FINANCE_ANNA);
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  const done = await waitForRefund(refundId);
  assert.equal(done.status, 'SUCCEEDED', JSON.stringify(done));
  assert.deepEqual(done.state.approval, { decision: 'approved', by: 'fin-anna', reason: 'receipt checked' });
  assert.equal((await facts(orderId, 'cust-bob', 'HOODIE-GREY-L')).order.status, 'REFUNDED');

  const late = await call('POST', `/refunds/${refundId}/approve`, { reason: 'again' }, FINANCE_ANNA);
  assert.equal(late.status, 409);
  assert.equal(late.body.error.code, 'already_completed');
  assert.equal((await call('GET', '/refunds/refund-nope')).status, 404);

  // every action the run was asked, accepted or refused, under the token's subject; the 400 and 403 never reached it
  const audit = await stack.database.db.auditEntry.findMany({ where: { workflowId: refundId }, orderBy: { id: 'asc' } });
  assert.deepEqual(
    audit.map((row) => [row.subject, row.action, row.outcome, row.code]),
    [
      ['fin-anna', 'refund.retry', 'refused', 'not_waiting_for_operator'],
      ['fin-anna', 'refund.approve', 'accepted', null],
      ['fin-anna', 'refund.approve', 'refused', 'already_completed'],
    ],
  );
});

test('refunds the provider rejects wait for an operator: retry, refund-manually and abandon via the API', async () => {
  const orderId = await paidOrder('rf-operator', 'cust-alice', [{ sku: 'TSHIRT-RED-M', quantity: 3, unitPriceMinor: 1999 }]);
  await chaos({ rejectRefunds: true });
  try {
    const ids = [];
    for (const name of ['retry', 'manual', 'abandon']) {
      const started = await postRefund({ requestId: `rf-op-${name}`, orderId, amount: 1999 });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      ids.push(started.body.refundId as string);
    }
    for (const id of ids) {
      const stuck = await waitForRefund(id, (v) => v.status === 'NEEDS_OPERATOR');
      assert.equal(stuck.state.provider.status, 'FAILED');
      assert.equal(stuck.state.provider.failureReason, 'refund_rejected');
    }
  } finally {
    await chaos(null);
  }
  const [retryId, manualId, abandonId] = [refundIdFor('rf-op-retry'), refundIdFor('rf-op-manual'), refundIdFor('rf-op-abandon')];
  const actions = [
    await call('POST', `/refunds/${retryId}/retry`, { reason: 'provider issue resolved' }, FINANCE_ANNA),
    await call('POST', `/refunds/${manualId}/refund-manually`, { reason: 'paid by bank transfer', reference: 'SEPA-0042' }, FINANCE_BEN),
    await call('POST', `/refunds/${abandonId}/abandon`, { reason: 'customer took store credit' }, FINANCE_BEN),
  ];
  for (const a of actions) assert.equal(a.status, 200, JSON.stringify(a.body));

  const retried = await waitForRefund(retryId);
  assert.equal(retried.status, 'SUCCEEDED', JSON.stringify(retried));
  assert.equal(retried.state.provider.attempts, 2);
  const manual = await waitForRefund(manualId);
  assert.equal(manual.status, 'REFUNDED_MANUALLY', JSON.stringify(manual));
  assert.equal(manual.state.manualReference, 'SEPA-0042');
  const abandoned = await waitForRefund(abandonId);
  assert.equal(abandoned.status, 'ABANDONED', JSON.stringify(abandoned));
  assert.match(abandoned.state.failure, /customer took store credit/);

  const now = await facts(orderId, 'cust-alice', 'TSHIRT-RED-M');
  assert.equal(now.order.status, 'PARTIALLY_REFUNDED');
  assert.equal(now.order.refundedMinor, 3998, 'the retried and the manual refund count; the abandoned one does not');
  const refunds = await providerRefunds(orderId);
  assert.deepEqual(refunds.map((t) => t.amountMinor), [1999], 'only the retry moved money at the provider');
});

test('a refund survives its worker being killed while it waits for the provider, and refunds once', async () => {
  const orderId = await paidOrder('rf-crash', 'cust-bob', [{ sku: 'MUG-LOGO', quantity: 2, unitPriceMinor: 1299 }]);
  // from here on only worker processes serve the task queue
  worker.shutdown();
  while (worker.getState() !== 'STOPPED') await new Promise((r) => setTimeout(r, 100));
  const first = await stack.spawnWorkerProcess();
  await chaos({ processingDelayMs: 4_000 });
  try {
    const started = await postRefund({ requestId: 'rf-crash', orderId, amount: 'full', restock: [{ sku: 'MUG-LOGO', quantity: 2 }] });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await waitForRefund(started.body.refundId, (v) => v.status === 'REFUNDING' && v.state?.provider?.status === 'PENDING');
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    await stack.spawnWorkerProcess();
    const done = await waitForRefund(started.body.refundId, undefined, 90_000);
    assert.equal(done.status, 'SUCCEEDED', JSON.stringify(done));
  } finally {
    await chaos(null);
  }
  const refunds = await providerRefunds(orderId);
  assert.deepEqual(refunds.map((t) => t.amountMinor), [2598], 'refunded exactly once');
  const now = await facts(orderId, 'cust-bob', 'MUG-LOGO');
  assert.equal(now.order.status, 'REFUNDED');
});
