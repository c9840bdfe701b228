// Payment notifications that never get lost, on real parts: the asynchronous PSP simulator
// with its chaos knobs, its signed webhooks to the real API, the worker and Temporal.
// Whatever the provider does to its notifications, the invariant holds: money captured at
// the provider means the order is PAID, or the capture was refunded in full.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { signatureHeader } from '../../api/webhook-signature.ts';
import { checkoutWorkflowId, orderIdFor, refundRequestIdFor, type CheckoutInput, type CheckoutTiming } from '../../shared/checkout.ts';
import { refundWorkflowId, type RefundState } from '../../shared/refunds.ts';
import { CHECKOUT_TASK_QUEUE } from '../../shared/task-queues.ts';
import { CARDS, getCheckout, postCheckout, snapshot, waitForOutcome } from '../support/checkout-client.ts';
import { startTestStack, TEST_WEBHOOK_SECRET, type TestStack } from '../support/stack.ts';
import { authFor } from '../support/service-keys.ts';
import { tokeniseCard } from '../support/cards.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack({ pspWebhookDelivery: { retryBaseMs: 200, retryMaxMs: 1_000 } });
  await stack.startWorker();
});
after(() => stack.stop());

async function put(url: string, body: object | null) {
  const res = await fetch(url, {
    method: body ? 'PUT' : 'DELETE',
    headers: { ...authFor('psp'), 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.ok, `${url}: ${res.status} ${await res.text()}`);
}
const chaos = (knobs: object | null) => put(`${stack.serviceUrls.psp}/v1/chaos`, knobs);
const pspFaults = (faults: object | null) => put(`${stack.serviceUrls.psp}/_faults`, faults);

function checkoutBody(customerId = 'cust-alice') {
  return {
    customerId,
    currency: 'EUR',
    lines: [{ sku: 'TSHIRT-RED-M', quantity: 1, unitPriceMinor: 1999 }],
    paymentMethod: { type: 'card' as const, number: CARDS.approve },
  };
}

/** Through the API; the default timing (first check after 3 s). */
async function checkoutThroughApi(key: string): Promise<Record<string, any>> {
  const started = await postCheckout(stack, key, checkoutBody());
  assert.equal(started.status, 202, JSON.stringify(started.body));
  return waitForOutcome(stack, started.body.checkoutId);
}

/** The workflow input for checkoutBody(): straight to Temporal, so the card is tokenised here as the API would. */
async function checkoutInputFor(key: string, timing: CheckoutTiming): Promise<CheckoutInput> {
  const body = checkoutBody();
  return { checkoutKey: key, ...body, paymentMethod: await tokeniseCard(stack.serviceUrls.psp, body.paymentMethod.number), timing };
}

/** Straight to Temporal, to shorten the payment deadline (the API does not take `timing`). */
async function checkoutWithTiming(key: string, timing: CheckoutTiming): Promise<Record<string, any>> {
  const input = await checkoutInputFor(key, timing);
  await stack.client.workflow.start('checkout', { workflowId: checkoutWorkflowId(key), taskQueue: CHECKOUT_TASK_QUEUE, args: [input] });
  return waitForOutcome(stack, checkoutWorkflowId(key), 90_000);
}

/** What the provider and our side hold for an order. */
async function moneyFor(orderId: string) {
  const db = stack.database.db;
  const payments = await db.pspPayment.findMany({ where: { merchantReference: orderId }, include: { transactions: true } });
  const transactions = payments.flatMap((p) => p.transactions);
  const sum = (type: string) => transactions.filter((t) => t.type === type).reduce((total, t) => total + t.amountMinor, 0);
  const events = await db.pspEvent.findMany({ where: { paymentId: { in: payments.map((p) => p.id) } } });
  return {
    order: await db.order.findUnique({ where: { id: orderId } }),
    captures: transactions.filter((t) => t.type === 'CAPTURE').length,
    capturedMinor: sum('CAPTURE'),
    refundedMinor: sum('REFUND'),
    providerEvents: events.length,
    recordedEvents: await db.webhookEvent.findMany({ where: { orderId } }),
  };
}

/** No money lost: captured at the provider ⇒ the order is PAID, or the capture is fully refunded. */
async function assertNoMoneyLost(orderId: string) {
  const money = await moneyFor(orderId);
  if (money.capturedMinor > 0) {
    assert.ok(
      money.order?.status === 'PAID' || money.refundedMinor === money.capturedMinor,
      `captured ${money.capturedMinor}, refunded ${money.refundedMinor}, order ${money.order?.status}`,
    );
  }
  assert.ok(money.captures <= 1, `${money.captures} captures`);
  return money;
}

/** Waits until every event the provider raised for the order has been delivered or dropped. */
async function settledDeliveries(orderId: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = await stack.database.db.pspDelivery.count({
      where: { status: 'PENDING', event: { payment: { merchantReference: orderId } } },
    });
    if (pending === 0) return;
    if (Date.now() > deadline) assert.fail(`${pending} deliveries for ${orderId} still pending`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('notified by webhook: each event is recorded once and the checkout completes with one capture', async () => {
  const key = 'it-notified-1';
  const orderId = orderIdFor(key);
  const outcome = await checkoutThroughApi(key);
  assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
  await settledDeliveries(orderId);

  const money = await assertNoMoneyLost(orderId);
  assert.equal(money.captures, 1);
  assert.equal(money.order?.status, 'PAID');
  const types = money.recordedEvents.map((e) => e.type).sort();
  assert.deepEqual(types, ['payment.authorized', 'payment.captured']);
  assert.ok(money.recordedEvents.every((e) => e.signalOutcome === 'signaled' || e.signalOutcome === 'no_running_checkout'));
  assert.equal(outcome.result.payment.source, 'signal', 'the notification, not the 3 s timer, prompted the decisive check');
});

test('every webhook delivered twice: duplicates are recorded once and change nothing', async () => {
  await chaos({ duplicateRate: 1 });
  try {
    const key = 'it-duplicates-1';
    const orderId = orderIdFor(key);
    const outcome = await checkoutThroughApi(key);
    assert.equal(outcome.status, 'PAID');
    await settledDeliveries(orderId);

    const money = await assertNoMoneyLost(orderId);
    assert.equal(money.captures, 1);
    assert.equal(money.recordedEvents.length, money.providerEvents, 'one row per event id, however often it came');
    const deliveries = await stack.database.db.pspDelivery.findMany({ where: { event: { payment: { merchantReference: orderId } } } });
    assert.ok(deliveries.every((d) => d.status === 'DELIVERED'));
  } finally {
    await chaos(null);
  }
});

test('webhooks delivered late and newest first: the order still completes with one capture', async () => {
  await chaos({ reorder: true, deliveryDelayMs: 1_500 });
  try {
    const key = 'it-reordered-1';
    const orderId = orderIdFor(key);
    const outcome = await checkoutThroughApi(key);
    assert.equal(outcome.status, 'PAID');
    await settledDeliveries(orderId);
    const money = await assertNoMoneyLost(orderId);
    assert.equal(money.captures, 1);
    assert.equal(money.order?.status, 'PAID');
  } finally {
    await chaos(null);
  }
});

test('every webhook dropped: the checkout still completes by asking the provider itself', async () => {
  await chaos({ dropRate: 1 });
  try {
    const key = 'it-dropped-1';
    const orderId = orderIdFor(key);
    const outcome = await checkoutThroughApi(key);
    assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
    assert.equal(outcome.result.payment.source, 'active_query');
    assert.equal(outcome.result.payment.eventsReceived, 0);

    const money = await assertNoMoneyLost(orderId);
    assert.equal(money.captures, 1);
    assert.equal(money.order?.status, 'PAID');
    assert.equal(money.recordedEvents.length, 0, 'nothing reached us');
  } finally {
    await chaos(null);
  }
});

test('forged, stale and replayed deliveries are refused or ignored, and nothing is recorded twice', async () => {
  const key = 'it-forged-1';
  const orderId = orderIdFor(key);
  assert.equal((await checkoutThroughApi(key)).status, 'PAID');
  await settledDeliveries(orderId);
  const [genuine] = await stack.database.db.pspEvent.findMany({ where: { payment: { merchantReference: orderId } }, take: 1 });
  assert.ok(genuine);
  const send = async (body: string, signature: string) => {
    const res = await fetch(`${stack.apiUrl}/webhooks/psp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Psp-Signature': signature },
      body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const now = Math.floor(Date.now() / 1000);

  const forgedBody = JSON.stringify({ ...JSON.parse(genuine.body), id: 'evt_forged_1' });
  const forged = await send(forgedBody, signatureHeader(['whsec_guessed'], now, forgedBody));
  assert.equal(forged.status, 401);
  assert.equal(forged.body.error.code, 'invalid_signature');
  assert.equal(await stack.database.db.webhookEvent.count({ where: { eventId: 'evt_forged_1' } }), 0);

  const stale = await send(genuine.body, signatureHeader([TEST_WEBHOOK_SECRET], now - 3_600, genuine.body));
  assert.equal(stale.status, 400);
  assert.equal(stale.body.error.code, 'timestamp_out_of_tolerance');

  const replayed = await send(genuine.body, signatureHeader([TEST_WEBHOOK_SECRET], now, genuine.body));
  assert.equal(replayed.status, 200);
  assert.equal(replayed.body.duplicate, true);
  assert.equal(await stack.database.db.webhookEvent.count({ where: { eventId: genuine.id } }), 1);
});

test('an event for a payment we do not know is recorded and answered 2xx', async () => {
  const body = JSON.stringify({
    id: 'evt_unknown_payment_1',
    type: 'payment.captured',
    createdAt: new Date().toISOString(),
    data: { paymentId: 'psp_not_ours', reference: 'order-nobody-knows', status: 'CAPTURED', amountMinor: 100, currency: 'EUR' },
  });
  const res = await fetch(`${stack.apiUrl}/webhooks/psp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Psp-Signature': signatureHeader([TEST_WEBHOOK_SECRET], Math.floor(Date.now() / 1000), body) },
    body,
  });
  assert.equal(res.status, 200);
  const row = await stack.database.db.webhookEvent.findUniqueOrThrow({ where: { eventId: 'evt_unknown_payment_1' } });
  assert.equal(row.signalOutcome, 'no_running_checkout');
});

test('paid after our deadline: the void is refused, the late approval is captured once and the order is PAID', async () => {
  await chaos({ paidAfterTimeout: true, lateDecisionMs: 5_000 });
  try {
    const key = 'it-paid-late-1';
    const orderId = orderIdFor(key);
    const outcome = await checkoutWithTiming(key, { paymentDeadlineMs: 2_000, firstPaymentCheckMs: 500, maxPaymentCheckIntervalMs: 1_000 });

    const money = await assertNoMoneyLost(orderId);
    assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
    assert.equal(money.order?.status, 'PAID');
    assert.equal(money.captures, 1);
    assert.equal(money.refundedMinor, 0);
    const reservation = await stack.database.db.reservation.findUniqueOrThrow({ where: { orderId } });
    assert.equal(reservation.status, 'COMMITTED');
  } finally {
    await chaos(null);
  }
});

test('paid after our deadline with the stock released meanwhile: a Refund workflow gives the capture back and the order is cancelled', async () => {
  await chaos({ paidAfterTimeout: true, lateDecisionMs: 6_000 });
  try {
    const key = 'it-paid-late-no-stock-1';
    const orderId = orderIdFor(key);
    const before = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-alice', orderId });
    const input = await checkoutInputFor(key, { paymentDeadlineMs: 2_000, firstPaymentCheckMs: 500, maxPaymentCheckIntervalMs: 1_000 });
    const handle = await stack.client.workflow.start('checkout', { workflowId: checkoutWorkflowId(key), taskQueue: CHECKOUT_TASK_QUEUE, args: [input] });
    // While the provider is still deciding, the reservation goes (an operator, an expiry job...).
    await waitUntil(async () => (await getCheckout(stack, handle.workflowId)).body.state?.step === 'COMPENSATING');
    const released = await fetch(`${stack.serviceUrls.inventory}/reservations/${orderId}/release`, {
      method: 'POST',
      headers: { ...authFor('inventory'), 'content-type': 'application/json', 'idempotency-key': `test-release-${orderId}` },
      body: '{}',
    });
    assert.equal(released.status, 200);
    const outcome = await waitForOutcome(stack, handle.workflowId, 90_000);

    assert.equal(outcome.status, 'CANCELLED', JSON.stringify(outcome));
    assert.match(outcome.result.cancelReason, /refunded/);
    // the money went back through a Refund workflow, the checkout's child
    const refundId = refundWorkflowId(refundRequestIdFor(key));
    assert.deepEqual(outcome.result.refund, { workflowId: refundId, status: 'SUCCEEDED', amountMinor: 1999, failure: null });
    const refund = await stack.client.workflow.getHandle(refundId).describe();
    assert.equal(refund.type, 'refund');
    assert.equal(refund.parentExecution?.workflowId, handle.workflowId);
    const refundResult: RefundState = await stack.client.workflow.getHandle(refundId).result();
    assert.equal(refundResult.requestedBy, 'checkout');
    assert.deepEqual(refundResult.approval, { decision: 'not_required', by: 'checkout', reason: outcome.result.cancelReason });
    const recorded = await fetch(`${stack.serviceUrls.payments}/payments/refunds/${encodeURIComponent(refundId)}`, { headers: authFor('payments') });
    assert.equal(recorded.status, 200);
    assert.equal(((await recorded.json()) as { status: string }).status, 'SUCCEEDED');
    const money = await assertNoMoneyLost(orderId);
    assert.equal(money.captures, 1);
    assert.equal(money.refundedMinor, money.capturedMinor);
    assert.equal(money.order?.status, 'CANCELLED');
    const now = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-alice', orderId });
    assert.equal(now.onHand, before.onHand);
    assert.equal(now.reserved, before.reserved);
  } finally {
    await chaos(null);
  }
});

test('provider down for a while: calls are retried and the checkout completes once it is back', async () => {
  await chaos({ dropRate: 1 }); // no notification either: only asking gets there
  // its payments API, not the vault: the API tokenises the card before the run starts, and that refusal is tested at the door
  await pspFaults({ errorRate: 1, path: '/v1/payments' });
  const clear = setTimeout(() => void pspFaults(null), 5_000);
  try {
    const key = 'it-psp-down-1';
    const orderId = orderIdFor(key);
    const outcome = await checkoutThroughApi(key);
    assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));
    const money = await assertNoMoneyLost(orderId);
    assert.equal(money.captures, 1);
  } finally {
    clearTimeout(clear);
    await pspFaults(null);
    await chaos(null);
  }
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
