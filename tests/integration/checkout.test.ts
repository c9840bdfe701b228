// Checkout end to end on real parts: Temporal dev server, PostgreSQL, the six
// services and the HTTP API. Assertions read the services' own tables.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { authorization, CARDS, getCheckout, postCheckout, snapshot, waitForOutcome, waitForStep } from '../support/checkout-client.ts';
import { authFor } from '../support/service-keys.ts';
import { testDataConverter } from '../support/payload-keys.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
  await stack.startWorker();
});
after(() => stack.stop());

async function useCoupon(code: string, customerId: string | null, value: number, kind: 'FIXED' | 'PERCENT' = 'FIXED') {
  await stack.database.db.coupon.create({ data: { code, customerId, kind, value, currency: 'EUR' } });
}

test('a paid checkout decrements stock, redeems the coupon, awards points and captures exactly once', async () => {
  await useCoupon('IT-PAID-5', 'cust-alice', 500);
  const key = 'it-paid-1';
  const orderId = orderIdFor(key);
  const before = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-alice', couponCode: 'IT-PAID-5', orderId });

  const started = await postCheckout(stack, key, {
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku: 'TSHIRT-RED-M', quantity: 2, unitPriceMinor: 1999 }],
    couponCode: 'IT-PAID-5',
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.equal(started.body.checkoutId, checkoutWorkflowId(key));

  const outcome = await waitForOutcome(stack, started.body.checkoutId);
  assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));

  const now = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-alice', couponCode: 'IT-PAID-5', orderId });
  assert.equal(now.order?.status, 'PAID');
  assert.equal(now.order?.subtotalMinor, 3998);
  assert.equal(now.order?.discountMinor, 500);
  assert.equal(now.order?.totalMinor, 3498);
  assert.equal(now.onHand, before.onHand - 2);
  assert.equal(now.reserved, before.reserved);
  assert.equal(now.couponStatus, 'REDEEMED');
  assert.equal(now.points, before.points + 34);
  assert.equal(now.authorizations, 1);
  assert.equal(now.captures, 1);
  const payment = await stack.database.db.payment.findUniqueOrThrow({ where: { orderId } });
  assert.equal(payment.status, 'CAPTURED');
  assert.equal(payment.capturedMinor, 3498);
});

test('a declined card ends CANCELLED with stock, coupon and points exactly as before and no capture', async () => {
  await useCoupon('IT-DECLINE-10', null, 10, 'PERCENT');
  const key = 'it-declined-1';
  const orderId = orderIdFor(key);
  const before = await snapshot(stack.database.db, { sku: 'HOODIE-GREY-L', customerId: 'cust-bob', couponCode: 'IT-DECLINE-10', orderId });

  const started = await postCheckout(stack, key, {
    customerId: 'cust-bob',
    currency: 'EUR',
    lines: [{ sku: 'HOODIE-GREY-L', quantity: 1, unitPriceMinor: 4999 }],
    couponCode: 'IT-DECLINE-10',
    paymentMethod: { type: 'card', number: CARDS.declined },
  });
  assert.equal(started.status, 202);
  const outcome = await waitForOutcome(stack, started.body.checkoutId);
  assert.equal(outcome.status, 'CANCELLED');

  const now = await snapshot(stack.database.db, { sku: 'HOODIE-GREY-L', customerId: 'cust-bob', couponCode: 'IT-DECLINE-10', orderId });
  assert.equal(now.order?.status, 'CANCELLED');
  assert.match(now.order?.cancelReason ?? '', /declin/i);
  assert.equal(now.onHand, before.onHand);
  assert.equal(now.reserved, before.reserved);
  assert.equal(now.couponStatus, 'AVAILABLE');
  assert.equal(now.points, before.points);
  assert.equal(now.captures, 0);
  const lock = await stack.database.db.couponLock.findUniqueOrThrow({ where: { orderId } });
  assert.equal(lock.status, 'UNLOCKED');
  const reservation = await stack.database.db.reservation.findUniqueOrThrow({ where: { orderId } });
  assert.equal(reservation.status, 'RELEASED');
});

test('repeating the POST with the same key returns the same checkout and starts nothing new', async () => {
  const key = 'it-repeat-1';
  const body = {
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  };
  const first = await postCheckout(stack, key, body);
  const second = await postCheckout(stack, key, body);
  assert.equal(first.status, 202);
  assert.equal(second.status, 202);
  assert.equal(second.body.checkoutId, first.body.checkoutId);
  await waitForOutcome(stack, first.body.checkoutId);
  const third = await postCheckout(stack, key, body);
  assert.equal(third.body.checkoutId, first.body.checkoutId);

  const runs = await stack.client.workflow.count(`WorkflowId = '${first.body.checkoutId}'`);
  assert.equal(runs.count, 1);
  const orders = await stack.database.db.order.count({ where: { checkoutId: first.body.checkoutId } });
  assert.equal(orders, 1);
  const pspPayments = await stack.database.db.pspPayment.count({ where: { merchantReference: orderIdFor(key) } });
  assert.equal(pspPayments, 1);
});

test('cancelling before capture compensates everything and the order says why', async () => {
  const key = 'it-cancel-1';
  const orderId = orderIdFor(key);
  const before = await snapshot(stack.database.db, { sku: 'MUG-LOGO', customerId: 'cust-bob', orderId });
  // hold authorizations long enough to cancel while the checkout waits for the PSP
  await fetch(`${stack.serviceUrls.payments}/_faults`, {
    method: 'PUT',
    headers: { ...authFor('payments'), 'content-type': 'application/json' },
    body: JSON.stringify({ latencyMs: 2000, path: '/payments/authorize' }),
  });
  try {
    const started = await postCheckout(stack, key, {
      customerId: 'cust-bob',
      currency: 'EUR',
      lines: [{ sku: 'MUG-LOGO', quantity: 3, unitPriceMinor: 1299 }],
      paymentMethod: { type: 'card', number: CARDS.approve },
    });
    await waitForStep(stack, started.body.checkoutId, 'AUTHORIZING_PAYMENT');
    const cancelAs = async (customerId: string) =>
      fetch(`${stack.apiUrl}/checkouts/${started.body.checkoutId}/cancel`, {
        method: 'POST',
        headers: { ...(await authorization(stack, ['customer', customerId])), 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'customer changed their mind' }),
      });
    assert.equal((await cancelAs('cust-alice')).status, 404, "another customer's checkout is not there for them");
    const cancel = await cancelAs('cust-bob');
    assert.equal(cancel.status, 200, await cancel.clone().text());
    const outcome = await waitForOutcome(stack, started.body.checkoutId);
    assert.equal(outcome.status, 'CANCELLED');
  } finally {
    await fetch(`${stack.serviceUrls.payments}/_faults`, { method: 'DELETE', headers: authFor('payments') });
  }
  const now = await snapshot(stack.database.db, { sku: 'MUG-LOGO', customerId: 'cust-bob', orderId });
  assert.equal(now.order?.status, 'CANCELLED');
  assert.match(now.order?.cancelReason ?? '', /changed their mind/);
  assert.equal(now.onHand, before.onHand);
  assert.equal(now.reserved, before.reserved);
  assert.equal(now.captures, 0);
  // the authorization that went through while we cancelled was voided at the provider
  assert.equal(now.voids, now.authorizations);
});

test('unknown checkout ids are 404', async () => {
  const res = await getCheckout(stack, 'checkout-does-not-exist');
  assert.equal(res.status, 404);
});

test('histories of the completed checkouts replay without non-determinism', async () => {
  const histories = [];
  for await (const execution of stack.client.workflow.list({ query: `WorkflowType = 'checkout' AND ExecutionStatus = 'Completed'` })) {
    histories.push({ workflowId: execution.workflowId, history: await stack.client.workflow.getHandle(execution.workflowId).fetchHistory() });
  }
  assert.ok(histories.length >= 3, `expected completed checkouts, found ${histories.length}`);
  for await (const result of Worker.runReplayHistories(
    // the stack's ring: it decrypts the histories, and its failure converter goes into the bundle
    { workflowsPath: new URL('../../workflows/index.ts', import.meta.url).pathname, dataConverter: testDataConverter() },
    histories,
  )) {
    assert.equal(result.error, undefined, `${result.workflowId}: ${result.error}`);
  }
});

test("a customer cannot use another customer's coupon: not by naming them, not by quoting the code", async () => {
  await useCoupon('IT-ALICE-ONLY', 'cust-alice', 500);
  const body = {
    currency: 'EUR',
    lines: [{ sku: 'MUG-LOGO', quantity: 2 }],
    couponCode: 'IT-ALICE-ONLY',
    paymentMethod: { type: 'card', number: CARDS.approve },
  };
  // Bob's token, Alice's customer id: refused at the door, nothing started.
  const asAlice = await fetch(`${stack.apiUrl}/checkouts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'it-bob-as-alice', ...(await authorization(stack, ['customer', 'cust-bob'])) },
    body: JSON.stringify({ ...body, customerId: 'cust-alice' }),
  });
  assert.equal(asAlice.status, 403);
  assert.equal(((await asAlice.json()) as { error: { field: string } }).error.field, 'customerId');
  assert.equal(await stack.database.db.order.count({ where: { id: orderIdFor('it-bob-as-alice') } }), 0);

  // Bob as himself with Alice's code: the coupons service refuses it, the checkout ends CANCELLED.
  const started = await postCheckout(stack, 'it-bob-alice-coupon', { ...body, customerId: 'cust-bob' });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const outcome = await waitForOutcome(stack, started.body.checkoutId);
  assert.equal(outcome.status, 'CANCELLED', JSON.stringify(outcome));
  const order = await stack.database.db.order.findUniqueOrThrow({ where: { id: orderIdFor('it-bob-alice-coupon') } });
  assert.equal(order.status, 'CANCELLED');
  assert.match(order.cancelReason ?? '', /coupon/i);
  const coupon = await stack.database.db.coupon.findUniqueOrThrow({ where: { code: 'IT-ALICE-ONLY' } });
  assert.equal(coupon.status, 'AVAILABLE');
  assert.equal(coupon.lockedBy, null);
  const pspPayments = await stack.database.db.pspPayment.count({ where: { merchantReference: orderIdFor('it-bob-alice-coupon') } });
  assert.equal(pspPayments, 0, 'nothing was charged');
});
