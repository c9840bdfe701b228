import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_LINE_QUANTITY, MAX_ORDER_TOTAL_MINOR } from '../../shared/limits.ts';
import { startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

// Seeded catalogue: TSHIRT-RED-M 19.99, MUG-LOGO 12.99 EUR.
const LINES = [
  { sku: 'TSHIRT-RED-M', quantity: 2, quotedUnitPriceMinor: 1999 },
  { sku: 'MUG-LOGO', quantity: 1 },
];
async function createOrder(orderId = uniqueId('order'), overrides: Record<string, unknown> = {}) {
  const answer = await s.post('orders', '/orders', {
    orderId,
    checkoutId: `checkout-${orderId}`,
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: LINES,
    ...overrides,
  });
  return { orderId, answer };
}
const statusChanges = (orderId: string) => s.db.orderStatusChange.count({ where: { orderId } });
const orderRows = async (orderId: string) => ({
  orders: await s.db.order.count({ where: { id: orderId } }),
  lines: await s.db.orderLine.count({ where: { orderId } }),
  changes: await statusChanges(orderId),
});
const NO_ROWS = { orders: 0, lines: 0, changes: 0 };

describe('orders', () => {
  test('creating an order prices its lines from the catalogue; the same order id again returns it unchanged', async () => {
    const { orderId, answer } = await createOrder();
    assert.equal(answer.status, 201);
    assert.equal(answer.body.id, orderId);
    assert.equal(answer.body.status, 'PENDING');
    assert.equal(answer.body.subtotalMinor, 2 * 1999 + 1299);
    assert.equal(answer.body.totalMinor, 2 * 1999 + 1299);
    assert.equal(answer.body.discountMinor, 0);
    assert.deepEqual(answer.body.lines, [
      { sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 },
      { sku: 'TSHIRT-RED-M', quantity: 2, unitPriceMinor: 1999 },
    ]);
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
      lines: [{ sku: 'MUG-LOGO', quantity: 1, quotedUnitPriceMinor: 12.5 }],
    });
    assert.equal(badLine.status, 400);
    assert.equal(badLine.body.error.code, 'invalid_request');
    assert.equal(badLine.body.error.field, 'lines.0.quotedUnitPriceMinor');

    const noReason = await s.post('orders', `/orders/${orderId}/cancel`, {});
    assert.equal(noReason.body.error.field, 'reason');
    assert.equal((await s.get('orders', `/orders/${uniqueId('none')}`)).status, 404);
  });
});

describe('orders are priced from the catalogue, never by the caller', () => {
  test('a caller cannot set the price: unitPriceMinor is refused, and without a quote the catalogue price is charged', async () => {
    const tampered = await createOrder(uniqueId('order'), { lines: [{ sku: 'HOODIE-GREY-L', quantity: 1, unitPriceMinor: 1 }] });
    assert.equal(tampered.answer.status, 400);
    assert.equal(tampered.answer.body.error.field, 'lines.0');
    assert.deepEqual(await orderRows(tampered.orderId), NO_ROWS);

    const { orderId, answer } = await createOrder(uniqueId('order'), { lines: [{ sku: 'HOODIE-GREY-L', quantity: 3 }] });
    assert.equal(answer.status, 201);
    const row = await s.db.order.findUniqueOrThrow({ where: { id: orderId }, include: { lines: true } });
    assert.equal(row.subtotalMinor, 3 * 4999);
    assert.equal(row.totalMinor, 3 * 4999);
    assert.deepEqual(row.lines.map(({ sku, quantity, unitPriceMinor }) => ({ sku, quantity, unitPriceMinor })), [
      { sku: 'HOODIE-GREY-L', quantity: 3, unitPriceMinor: 4999 },
    ]);
  });

  test('a quote that is not the catalogue price is 409 price_changed naming both prices, and writes no order', async () => {
    const { orderId, answer } = await createOrder(uniqueId('order'), {
      lines: [
        { sku: 'MUG-LOGO', quantity: 1, quotedUnitPriceMinor: 1299 },
        { sku: 'HOODIE-GREY-L', quantity: 1, quotedUnitPriceMinor: 1 },
      ],
    });
    assert.equal(answer.status, 409);
    assert.equal(answer.body.error.code, 'price_changed');
    assert.equal(answer.body.error.sku, 'HOODIE-GREY-L');
    assert.equal(answer.body.error.quotedUnitPriceMinor, 1);
    assert.equal(answer.body.error.catalogueUnitPriceMinor, 4999);
    assert.deepEqual(await orderRows(orderId), NO_ROWS);
  });

  test('an unknown SKU is 409 unknown_sku naming it, and writes no order', async () => {
    const { orderId, answer } = await createOrder(uniqueId('order'), { lines: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] });
    assert.equal(answer.status, 409);
    assert.equal(answer.body.error.code, 'unknown_sku');
    assert.equal(answer.body.error.sku, 'NO-SUCH-SKU');
    assert.deepEqual(await orderRows(orderId), NO_ROWS);
  });

  test('an order in another currency than the catalogue is 409 currency_mismatch; a code outside ISO 4217 is 400', async () => {
    const usd = await createOrder(uniqueId('order'), { currency: 'USD' });
    assert.equal(usd.answer.status, 409);
    assert.equal(usd.answer.body.error.code, 'currency_mismatch');
    assert.equal(usd.answer.body.error.orderCurrency, 'USD');
    assert.equal(usd.answer.body.error.catalogueCurrency, 'EUR');
    assert.deepEqual(await orderRows(usd.orderId), NO_ROWS);

    const zzz = await createOrder(uniqueId('order'), { currency: 'ZZZ' });
    assert.equal(zzz.answer.status, 400);
    assert.equal(zzz.answer.body.error.field, 'currency');
    assert.deepEqual(await orderRows(zzz.orderId), NO_ROWS);
  });

  test('the shared limits hold: quantity per line and the order total', async () => {
    const tooMany = await createOrder(uniqueId('order'), { lines: [{ sku: 'MUG-LOGO', quantity: MAX_LINE_QUANTITY + 1 }] });
    assert.equal(tooMany.answer.status, 400);
    assert.equal(tooMany.answer.body.error.field, 'lines.0.quantity');
    assert.deepEqual(await orderRows(tooMany.orderId), NO_ROWS);

    // a SKU priced so that the limit in quantity still takes the total over the limit in money
    const sku = uniqueId('GOLD');
    await s.db.stockItem.create({ data: { sku, name: sku, priceMinor: MAX_ORDER_TOTAL_MINOR, currency: 'EUR', onHand: 10 } });
    const tooMuch = await createOrder(uniqueId('order'), { lines: [{ sku, quantity: 2 }] });
    assert.equal(tooMuch.answer.status, 400);
    assert.equal(tooMuch.answer.body.error.field, 'lines');
    assert.deepEqual(await orderRows(tooMuch.orderId), NO_ROWS);
    const atTheLimit = await createOrder(uniqueId('order'), { lines: [{ sku, quantity: 1 }] });
    assert.equal(atTheLimit.answer.status, 201);
    assert.equal(atTheLimit.answer.body.totalMinor, MAX_ORDER_TOTAL_MINOR);
  });

  test('an existing order is answered as priced when created, even if the catalogue changed since', async () => {
    const sku = uniqueId('REPRICE');
    await s.db.stockItem.create({ data: { sku, name: sku, priceMinor: 500, currency: 'EUR', onHand: 10 } });
    const lines = [{ sku, quantity: 1, quotedUnitPriceMinor: 500 }];
    const { orderId, answer } = await createOrder(uniqueId('order'), { lines });
    assert.equal(answer.status, 201);
    await s.db.stockItem.update({ where: { sku }, data: { priceMinor: 700 } });
    const again = await createOrder(orderId, { lines });
    assert.equal(again.answer.status, 200);
    assert.equal(again.answer.body.subtotalMinor, 500);
  });
});
