// The money invariants catch what they promise to catch: a deliberately broken set of
// provider and order records fails each rule, and a consistent one passes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkMoneyInvariants } from '../../lib/invariants.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase('cf_inv');
});
after(() => t.drop());

async function order(id: string, status: 'AWAITING_PAYMENT' | 'PAID' | 'CANCELLED') {
  await t.db.order.create({ data: { id, checkoutId: `checkout-${id}`, customerId: 'c', currency: 'EUR', subtotalMinor: 1000, totalMinor: 1000, status } });
}
async function providerPayment(id: string, reference: string, movements: ('CAPTURE' | 'REFUND')[]) {
  await t.db.pspPayment.create({ data: { id, merchantReference: reference, amountMinor: 1000, currency: 'EUR', cardLast4: '4242', status: 'CAPTURED' } });
  for (const [i, type] of movements.entries()) {
    await t.db.pspTransaction.create({ data: { id: `${id}_${i}`, paymentId: id, type, amountMinor: 1000 } });
  }
}

test('a consistent set passes: paid with one capture, cancelled and refunded in full', async () => {
  await order('order-ok-paid', 'PAID');
  await providerPayment('psp_ok_paid', 'order-ok-paid', ['CAPTURE']);
  await order('order-ok-refunded', 'CANCELLED');
  await providerPayment('psp_ok_refunded', 'order-ok-refunded', ['CAPTURE', 'REFUND']);
  assert.deepEqual(await checkMoneyInvariants(t.db), []);
});

test('a broken set fails: money kept for an unpaid order, a paid order captured twice or never', async () => {
  await order('order-bad-cancelled', 'CANCELLED');
  await providerPayment('psp_bad_cancelled', 'order-bad-cancelled', ['CAPTURE']);
  await providerPayment('psp_bad_orphan', 'order-bad-orphan', ['CAPTURE']);
  await order('order-bad-twice', 'PAID');
  await providerPayment('psp_bad_twice_1', 'order-bad-twice', ['CAPTURE']);
  await providerPayment('psp_bad_twice_2', 'order-bad-twice', ['CAPTURE']);
  await order('order-bad-never', 'PAID');

  const violations = await checkMoneyInvariants(t.db);
  assert.deepEqual(
    violations.map((v) => [v.rule, v.reference, v.rule === 'paid-order-capture-count' ? v.captures : v.orderStatus]),
    [
      ['captured-without-paid-order', 'order-bad-cancelled', 'CANCELLED'],
      ['captured-without-paid-order', 'order-bad-orphan', null],
      ['paid-order-capture-count', 'order-bad-never', 0],
      ['paid-order-capture-count', 'order-bad-twice', 2],
    ],
  );
});
