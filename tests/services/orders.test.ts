import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

const LINES = [
  { sku: 'TSHIRT-RED-M', quantity: 2, unitPriceMinor: 1999 },
  { sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 },
];
async function createOrder(orderId = uniqueId('order')) {
  const answer = await s.post('orders', '/orders', {
    orderId,
    checkoutId: `checkout-${orderId}`,
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: LINES,
  });
  return { orderId, answer };
}
const statusChanges = (orderId: string) => s.db.orderStatusChange.count({ where: { orderId } });

describe('orders', () => {
  test('creating an order sums its lines; the same order id again returns it unchanged', async () => {
    const { orderId, answer } = await createOrder();
    assert.equal(answer.status, 201);
    assert.equal(answer.body.id, orderId);
    assert.equal(answer.body.status, 'PENDING');
    assert.equal(answer.body.subtotalMinor, 2 * 1999 + 1299);
    assert.equal(answer.body.totalMinor, 2 * 1999 + 1299);
    assert.equal(answer.body.discountMinor, 0);
    assert.equal(answer.body.lines.length, 2);
    assert.deepEqual(answer.body.history.map((h: { from: string | null; to: string }) => [h.from, h.to]), [[null, 'PENDING']]);

    const again = await createOrder(orderId);
    assert.equal(again.answer.status, 200);
    assert.equal(again.answer.body.id, orderId);
    assert.equal(await s.db.order.count({ where: { id: orderId } }), 1);
    assert.equal(await statusChanges(orderId), 1);
  });

  test('an order goes PENDING → AWAITING_PAYMENT → PAID, each step recorded once', async () => {
    const { orderId } = await createOrder();
    const awaiting = await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 500, couponCode: 'ALICE-5EUR' });
    assert.equal(awaiting.status, 200);
    assert.equal(awaiting.body.status, 'AWAITING_PAYMENT');
    assert.equal(awaiting.body.totalMinor, 2 * 1999 + 1299 - 500);
    assert.equal(awaiting.body.couponCode, 'ALICE-5EUR');

    const repeat = await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 500, couponCode: 'ALICE-5EUR' });
    assert.equal(repeat.status, 200);

    const paid = await s.post('orders', `/orders/${orderId}/pay`, { paymentId: `pay_${orderId}`, amountMinor: awaiting.body.totalMinor });
    assert.equal(paid.status, 200);
    assert.equal(paid.body.status, 'PAID');
    assert.equal(paid.body.paymentId, `pay_${orderId}`);
    assert.equal((await s.post('orders', `/orders/${orderId}/pay`, { paymentId: `pay_${orderId}`, amountMinor: awaiting.body.totalMinor })).status, 200);

    const order = await s.get('orders', `/orders/${orderId}`);
    assert.deepEqual(
      order.body.history.map((h: { to: string }) => h.to),
      ['PENDING', 'AWAITING_PAYMENT', 'PAID'],
    );
    assert.equal(await statusChanges(orderId), 3);
  });

  test('illegal transitions are refused with 409 illegal_transition', async () => {
    const { orderId } = await createOrder();
    const payPending = await s.post('orders', `/orders/${orderId}/pay`, { paymentId: 'p', amountMinor: 5297 });
    assert.equal(payPending.status, 409);
    assert.equal(payPending.body.error.code, 'illegal_transition');
    assert.equal(payPending.body.error.from, 'PENDING');
    assert.equal(payPending.body.error.to, 'PAID');

    await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 0, couponCode: null });
    await s.post('orders', `/orders/${orderId}/pay`, { paymentId: 'p', amountMinor: 5297 });
    const cancelPaid = await s.post('orders', `/orders/${orderId}/cancel`, { reason: 'too late' });
    assert.equal(cancelPaid.status, 409);
    assert.equal(cancelPaid.body.error.code, 'illegal_transition');
    assert.equal((await s.get('orders', `/orders/${orderId}`)).body.status, 'PAID');
  });

  test('cancel records the reason, repeats harmlessly, and blocks further moves', async () => {
    const { orderId } = await createOrder();
    await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 0, couponCode: null });
    const cancelled = await s.post('orders', `/orders/${orderId}/cancel`, { reason: 'payment declined' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'CANCELLED');
    assert.equal(cancelled.body.cancelReason, 'payment declined');
    assert.equal((await s.post('orders', `/orders/${orderId}/cancel`, { reason: 'again' })).status, 200);
    assert.equal(await statusChanges(orderId), 3);

    const pay = await s.post('orders', `/orders/${orderId}/pay`, { paymentId: 'p', amountMinor: 5297 });
    assert.equal(pay.status, 409);
    const unknown = await s.post('orders', `/orders/${uniqueId('none')}/cancel`, { reason: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
  });

  test('paying a different amount than the total is refused', async () => {
    const { orderId } = await createOrder();
    await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 0, couponCode: null });
    const answer = await s.post('orders', `/orders/${orderId}/pay`, { paymentId: 'p', amountMinor: 1 });
    assert.equal(answer.status, 409);
    assert.equal(answer.body.error.code, 'amount_mismatch');
  });

  test('bad input is a 400 naming the field', async () => {
    const { orderId } = await createOrder();
    const bigDiscount = await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 999_999, couponCode: null });
    assert.equal(bigDiscount.status, 400);
    assert.equal(bigDiscount.body.error.field, 'discountMinor');

    const badLine = await s.post('orders', '/orders', {
      orderId: uniqueId('order'),
      checkoutId: 'c',
      customerId: 'cust-bob',
      currency: 'EUR',
      lines: [{ sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 12.5 }],
    });
    assert.equal(badLine.status, 400);
    assert.equal(badLine.body.error.code, 'invalid_request');
    assert.equal(badLine.body.error.field, 'lines.0.unitPriceMinor');

    const noReason = await s.post('orders', `/orders/${orderId}/cancel`, {});
    assert.equal(noReason.body.error.field, 'reason');
    assert.equal((await s.get('orders', `/orders/${uniqueId('none')}`)).status, 404);
  });
});
