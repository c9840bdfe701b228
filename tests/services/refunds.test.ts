// Refund additions (README "Refunds (issue 4)"): each service records its part of a
// refund once per natural key, never beyond what was paid, sold or awarded, under
// concurrency and retries. Asserted on the services' tables and the provider's records.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CARDS, startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspChaos: { processingDelayMs: 100 } });
});
after(() => s.stop());

/** Runs `work` with PSP chaos knobs set. */
async function withChaos(knobs: Record<string, unknown>, work: () => Promise<void>) {
  await s.request('psp', 'PUT', '/v1/chaos', knobs);
  try {
    await work();
  } finally {
    await s.request('psp', 'DELETE', '/v1/chaos');
  }
}

// ---------------------------------------------------------------- payments helpers

const syncPayment = (orderId: string) => s.post('payments', `/payments/${orderId}/sync`, {}, null);
const syncRefund = (refundId: string) => s.post('payments', `/payments/refunds/${refundId}/sync`, {}, null);
const requestRefund = (orderId: string, refundId: string, amountMinor: number, key?: string) =>
  s.post('payments', `/payments/${orderId}/refunds`, { refundId, amountMinor, reason: 'customer returned items' }, key);
const ourPayment = (orderId: string) => s.db.payment.findUniqueOrThrow({ where: { orderId } });

async function capturedPayment(amountMinor = 1000): Promise<{ orderId: string; pspPaymentId: string }> {
  const orderId = uniqueId('order');
  const authorized = await s.post('payments', '/payments/authorize', {
    orderId,
    amountMinor,
    currency: 'EUR',
    paymentMethod: await s.paymentMethod(CARDS.approve),
  });
  assert.equal(authorized.status, 202, authorized.text);
  await until(async () => (await syncPayment(orderId)).body.status === 'AUTHORIZED');
  await s.post('payments', `/payments/${orderId}/capture`);
  await until(async () => (await syncPayment(orderId)).body.status === 'CAPTURED');
  return { orderId, pspPaymentId: authorized.body.pspPaymentId };
}

/** Syncs until the refund leaves PENDING. */
async function settled(refundId: string): Promise<string> {
  let status = 'PENDING';
  await until(async () => {
    status = (await syncRefund(refundId)).body.status;
    return status !== 'PENDING';
  });
  return status;
}

const pspRefundTransactions = async (pspPaymentId: string) =>
  (await s.db.pspTransaction.findMany({ where: { paymentId: pspPaymentId, type: 'REFUND' } })).map((t) => t.amountMinor);

describe('payments refunds', () => {
  test('a refund is held, sent with reference = refund id, and counted as refunded once the provider succeeds', async () => {
    const { orderId, pspPaymentId } = await capturedPayment(1000);
    const refundId = uniqueId('refund');
    const answer = await requestRefund(orderId, refundId, 400);
    assert.equal(answer.status, 202);
    assert.equal(answer.body.refundId, refundId);
    assert.equal(answer.body.orderId, orderId);
    assert.equal(answer.body.status, 'PENDING');
    assert.equal(answer.body.amountMinor, 400);
    assert.equal(answer.body.attempt, 1);
    const held = (await s.get('payments', `/payments/${orderId}`)).body;
    assert.equal(held.refundedMinor, 0);
    assert.equal(held.refundableMinor, 600);

    assert.equal(await settled(refundId), 'SUCCEEDED');
    const [pspRefund] = await s.db.pspRefund.findMany({ where: { paymentId: pspPaymentId } });
    assert.equal(pspRefund!.reference, refundId);
    assert.equal(pspRefund!.requestKey, `refund:${refundId}:1`);
    assert.deepEqual(await pspRefundTransactions(pspPaymentId), [400]);
    const payment = (await s.get('payments', `/payments/${orderId}`)).body;
    assert.equal(payment.status, 'CAPTURED');
    assert.equal(payment.refundedMinor, 400);
    assert.equal(payment.refundableMinor, 600);
    assert.equal((await s.get('payments', `/payments/refunds/${refundId}`)).body.status, 'SUCCEEDED');

    // the same refund id again (another key, e.g. a lost idempotency record): current state, nothing new
    const again = await requestRefund(orderId, refundId, 400);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'SUCCEEDED');
    assert.equal(await s.db.pspRefund.count({ where: { paymentId: pspPaymentId } }), 1);

    const rest = uniqueId('refund');
    await requestRefund(orderId, rest, 600);
    assert.equal(await settled(rest), 'SUCCEEDED');
    const full = await ourPayment(orderId);
    assert.equal(full.status, 'REFUNDED');
    assert.equal(full.refundedMinor, 1000);
    assert.equal(full.refundPendingMinor, 0);
    assert.equal((await syncPayment(orderId)).body.status, 'REFUNDED');
    assert.deepEqual((await pspRefundTransactions(pspPaymentId)).sort(), [400, 600]);
  });

  test('ten concurrent refunds over the capture: exactly the captured amount is held and refunded, the rest 409 with refundableMinor', async () => {
    const { orderId, pspPaymentId } = await capturedPayment(1000);
    const refundIds = Array.from({ length: 10 }, () => uniqueId('refund'));
    const answers = await Promise.all(refundIds.map((refundId) => requestRefund(orderId, refundId, 300)));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    assert.equal(accepted.length, 3, answers.map((a) => a.status).join(','));
    for (const a of refused) {
      assert.equal(a.status, 409);
      assert.equal(a.body.error.code, 'refund_exceeds_captured');
      assert.equal(a.body.error.refundableMinor, 100);
    }
    const held = await ourPayment(orderId);
    assert.equal(held.refundPendingMinor + held.refundedMinor, 900);
    // a refund for exactly what is left still fits
    const last = uniqueId('refund');
    assert.equal((await requestRefund(orderId, last, 100)).status, 202);

    for (const a of [...accepted.map((x) => x.body.refundId as string), last]) assert.equal(await settled(a), 'SUCCEEDED');
    const payment = await ourPayment(orderId);
    assert.equal(payment.refundedMinor, 1000);
    assert.equal(payment.refundPendingMinor, 0);
    assert.equal(payment.status, 'REFUNDED');
    assert.equal(await s.db.paymentRefund.count({ where: { orderId } }), 4);
    assert.equal((await pspRefundTransactions(pspPaymentId)).reduce((a, b) => a + b, 0), 1000);
  });

  test('a retried request never refunds twice: same Idempotency-Key replays, same refund id after a lost record and a hung answer', async () => {
    const { orderId, pspPaymentId } = await capturedPayment(1000);
    const refundId = uniqueId('refund');
    const key = `refund-request-${refundId}`;
    // took effect but timed out: the refund is sent, the answer never reaches the caller
    await s.request('payments', 'PUT', '/_faults', { hangAfterMs: 1_000, path: `/payments/${orderId}/refunds` });
    try {
      const body = { refundId, amountMinor: 500, reason: 'customer returned items' };
      await assert.rejects(s.post('payments', `/payments/${orderId}/refunds`, body, key, { timeoutMs: 200 }));
      await until(async () => (await s.db.paymentRefund.findUnique({ where: { refundId } }))?.pspRefundId != null);
    } finally {
      await s.request('payments', 'DELETE', '/_faults');
    }
    await until(async () => (await s.db.idempotencyRecord.findUnique({ where: { scope_key: { scope: 'payments', key } } }))?.responseCode === 202);
    const replay = await requestRefund(orderId, refundId, 500, key);
    assert.equal(replay.status, 202);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await s.db.idempotencyRecord.deleteMany({ where: { scope: 'payments', key } });
    await s.db.idempotencyRecord.deleteMany({ where: { scope: 'psp', key: `refund:${refundId}:1` } });
    const lost = await requestRefund(orderId, refundId, 500, key);
    assert.equal(lost.status, 200);
    assert.equal(await settled(refundId), 'SUCCEEDED');
    assert.equal(await s.db.pspRefund.count({ where: { paymentId: pspPaymentId } }), 1);
    assert.deepEqual(await pspRefundTransactions(pspPaymentId), [500]);
    assert.equal((await ourPayment(orderId)).refundedMinor, 500);
  });

  test('a provider outage keeps the hold; the retried request sends the same attempt and refunds once', async () => {
    const { orderId, pspPaymentId } = await capturedPayment(1000);
    const refundId = uniqueId('refund');
    const key = `refund-request-${refundId}`;
    await s.request('psp', 'PUT', '/_faults', { errorRate: 1, path: '/v1/payments' });
    try {
      const failed = await requestRefund(orderId, refundId, 700, key);
      assert.equal(failed.status, 503);
      assert.equal(failed.body.error.code, 'psp_unavailable');
      assert.equal((await ourPayment(orderId)).refundPendingMinor, 700); // the money may have moved: held
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
    }
    const retried = await requestRefund(orderId, refundId, 700, key);
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.headers.get('idempotent-replayed'), null);
    assert.equal(await settled(refundId), 'SUCCEEDED');
    assert.deepEqual(await pspRefundTransactions(pspPaymentId), [700]);
    const payment = await ourPayment(orderId);
    assert.equal(payment.refundedMinor, 700);
    assert.equal(payment.refundPendingMinor, 0);
  });

  test('a FAILED refund releases its hold; retry sends attempt 2 (held again); record-manual counts it as refunded', async () => {
    const { orderId, pspPaymentId } = await capturedPayment(1000);
    const refundId = uniqueId('refund');
    await withChaos({ rejectRefunds: true, processingDelayMs: 50 }, async () => {
      assert.equal((await requestRefund(orderId, refundId, 800)).status, 202);
      assert.equal(await settled(refundId), 'FAILED');
    });
    const failed = (await s.get('payments', `/payments/refunds/${refundId}`)).body;
    assert.equal(failed.failureReason, 'refund_rejected');
    assert.equal(failed.attempt, 1);
    let payment = await ourPayment(orderId);
    assert.equal(payment.refundPendingMinor, 0);
    assert.equal(payment.refundedMinor, 0);
    assert.equal((await s.get('payments', `/payments/${orderId}`)).body.refundableMinor, 1000);
    assert.deepEqual(await pspRefundTransactions(pspPaymentId), []);

    // not FAILED → 409
    const other = uniqueId('refund');
    await requestRefund(orderId, other, 100);
    assert.equal((await s.post('payments', `/payments/refunds/${other}/retry`)).body.error.code, 'illegal_transition');
    assert.equal((await s.post('payments', `/payments/refunds/${other}/record-manual`, { reference: 'x', by: 'op' })).status, 409);
    assert.equal(await settled(other), 'SUCCEEDED');

    const retryKey = `retry-${refundId}`;
    const retried = await s.post('payments', `/payments/refunds/${refundId}/retry`, {}, retryKey);
    assert.equal(retried.status, 202);
    assert.equal(retried.body.status, 'PENDING');
    assert.equal(retried.body.attempt, 2);
    assert.equal((await ourPayment(orderId)).refundPendingMinor, 800);
    assert.equal((await s.post('payments', `/payments/refunds/${refundId}/retry`, {}, retryKey)).headers.get('idempotent-replayed'), 'true');
    assert.equal(await settled(refundId), 'SUCCEEDED');
    const attempts = await s.db.pspRefund.findMany({ where: { reference: refundId }, orderBy: { createdAt: 'asc' } });
    assert.deepEqual(attempts.map((r) => [r.requestKey, r.status]), [[`refund:${refundId}:1`, 'FAILED'], [`refund:${refundId}:2`, 'SUCCEEDED']]);
    payment = await ourPayment(orderId);
    assert.equal(payment.refundedMinor, 900);
    assert.deepEqual((await pspRefundTransactions(pspPaymentId)).sort(), [100, 800]);

    // a manual refund for another order's failed refund
    const manualOrder = await capturedPayment(500);
    const manual = uniqueId('refund');
    await withChaos({ rejectRefunds: true, processingDelayMs: 50 }, async () => {
      await requestRefund(manualOrder.orderId, manual, 500);
      assert.equal(await settled(manual), 'FAILED');
    });
    const recorded = await s.post('payments', `/payments/refunds/${manual}/record-manual`, { reference: 'bank-transfer-42', by: 'op-jane' });
    assert.equal(recorded.status, 200);
    assert.equal(recorded.body.status, 'SUCCEEDED_MANUALLY');
    assert.equal(recorded.body.manualReference, 'bank-transfer-42');
    const again = await s.post('payments', `/payments/refunds/${manual}/record-manual`, { reference: 'bank-transfer-42', by: 'op-jane' });
    assert.equal(again.status, 200);
    const manualPayment = await ourPayment(manualOrder.orderId);
    assert.equal(manualPayment.refundedMinor, 500);
    assert.equal(manualPayment.status, 'REFUNDED');
    assert.deepEqual(await pspRefundTransactions(manualOrder.pspPaymentId), []);
    assert.equal((await s.post('payments', `/payments/refunds/${manual}/retry`)).status, 409);
  });

  test('refunds of an uncaptured or unknown payment are refused; the old refund route is gone', async () => {
    const orderId = uniqueId('order');
    await s.post('payments', '/payments/authorize', { orderId, amountMinor: 100, currency: 'EUR', paymentMethod: await s.paymentMethod(CARDS.approve) });
    await until(async () => (await syncPayment(orderId)).body.status === 'AUTHORIZED');
    const refused = await requestRefund(orderId, uniqueId('refund'), 50);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'illegal_transition');
    assert.equal(await s.db.paymentRefund.count({ where: { orderId } }), 0);
    assert.equal((await requestRefund(uniqueId('none'), uniqueId('refund'), 50)).status, 404);
    assert.equal((await syncRefund(uniqueId('none'))).status, 404);
    assert.equal((await s.post('payments', `/payments/${orderId}/refund`, { amountMinor: 50, reason: 'x' })).status, 404);
    assert.equal((await s.post('payments', `/payments/${orderId}/refunds`, { refundId: 'r', amountMinor: 0, reason: 'x' })).body.error.field, 'amountMinor');
  });
});

// ---------------------------------------------------------------- orders

async function paidOrder(totalMinor = 5000) {
  const orderId = uniqueId('order');
  // orders are priced from the catalogue: an item at exactly this price
  const sku = uniqueId('ITEM');
  await s.db.stockItem.create({ data: { sku, name: sku, priceMinor: totalMinor, currency: 'EUR', onHand: 1 } });
  await s.post('orders', '/orders', {
    orderId,
    checkoutId: `checkout-${orderId}`,
    customerId: 'cust-alice',
    currency: 'EUR',
    lines: [{ sku, quantity: 1 }],
  });
  await s.post('orders', `/orders/${orderId}/await-payment`, { discountMinor: 0, couponCode: null });
  await s.post('orders', `/orders/${orderId}/pay`, { paymentId: `pay_${orderId}`, amountMinor: totalMinor });
  return orderId;
}

describe('orders refunds', () => {
  test('refunds are recorded once per refund id: PARTIALLY_REFUNDED, then REFUNDED at the total, never beyond', async () => {
    const orderId = await paidOrder(5000);
    const first = await s.post('orders', `/orders/${orderId}/refunds`, { refundId: 'r1-' + orderId, amountMinor: 2000 });
    assert.equal(first.status, 201);
    assert.equal(first.body.status, 'PARTIALLY_REFUNDED');
    assert.equal(first.body.refundedMinor, 2000);
    const again = await s.post('orders', `/orders/${orderId}/refunds`, { refundId: 'r1-' + orderId, amountMinor: 2000 });
    assert.equal(again.status, 200);
    assert.equal(again.body.refundedMinor, 2000);

    const tooMuch = await s.post('orders', `/orders/${orderId}/refunds`, { refundId: 'r2-' + orderId, amountMinor: 3001 });
    assert.equal(tooMuch.status, 409);
    assert.equal(tooMuch.body.error.code, 'refund_exceeds_paid');
    const rest = await s.post('orders', `/orders/${orderId}/refunds`, { refundId: 'r3-' + orderId, amountMinor: 3000 });
    assert.equal(rest.body.status, 'REFUNDED');
    const order = await s.db.order.findUniqueOrThrow({ where: { id: orderId } });
    assert.equal(order.refundedMinor, 5000);
    assert.equal(order.status, 'REFUNDED');
    assert.equal(await s.db.orderRefund.count({ where: { orderId } }), 2);
    const history = await s.db.orderStatusChange.findMany({ where: { orderId }, orderBy: { id: 'asc' } });
    assert.deepEqual(history.slice(-2).map((h) => h.toStatus), ['PARTIALLY_REFUNDED', 'REFUNDED']);

    const more = await s.post('orders', `/orders/${orderId}/refunds`, { refundId: 'r4-' + orderId, amountMinor: 1 });
    assert.equal(more.body.error.code, 'illegal_transition');
    // a late pay of a refunded order is answered unchanged; cancel is refused
    assert.equal((await s.post('orders', `/orders/${orderId}/pay`, { paymentId: `pay_${orderId}`, amountMinor: 5000 })).body.status, 'REFUNDED');
    assert.equal((await s.post('orders', `/orders/${orderId}/cancel`, { reason: 'x' })).status, 409);
  });

  test('concurrent refunds never take refundedMinor past the total; unpaid orders cannot be refunded', async () => {
    const orderId = await paidOrder(1000);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.post('orders', `/orders/${orderId}/refunds`, { refundId: `c${i}-${orderId}`, amountMinor: 300 })),
    );
    assert.equal(answers.filter((a) => a.status === 201).length, 3);
    assert.ok(answers.filter((a) => a.status !== 201).every((a) => a.body.error.code === 'refund_exceeds_paid'));
    assert.equal((await s.db.order.findUniqueOrThrow({ where: { id: orderId } })).refundedMinor, 900);

    const unpaid = uniqueId('order');
    await s.post('orders', '/orders', { orderId: unpaid, checkoutId: 'c', customerId: 'c', currency: 'EUR', lines: [{ sku: 'MUG-LOGO', quantity: 1 }] });
    const refused = await s.post('orders', `/orders/${unpaid}/refunds`, { refundId: `r-${unpaid}`, amountMinor: 100 });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'illegal_transition');
    assert.equal((await s.post('orders', `/orders/${uniqueId('none')}/refunds`, { refundId: 'x', amountMinor: 1 })).status, 404);
  });
});

// ---------------------------------------------------------------- inventory

async function soldOrder(lines: { sku: string; quantity: number }[]) {
  const orderId = uniqueId('order');
  assert.equal((await s.post('inventory', '/reservations', { orderId, lines })).status, 201);
  assert.equal((await s.post('inventory', `/reservations/${orderId}/commit`)).status, 200);
  return orderId;
}
const onHand = async (sku: string) => (await s.db.stockItem.findUniqueOrThrow({ where: { sku } })).onHand;

describe('inventory restocks', () => {
  test('a restock puts sold items back once per restock id and never more than was sold', async () => {
    const orderId = await soldOrder([{ sku: 'TSHIRT-RED-M', quantity: 3 }, { sku: 'MUG-LOGO', quantity: 1 }]);
    const before = { shirt: await onHand('TSHIRT-RED-M'), mug: await onHand('MUG-LOGO') };
    const first = await s.post('inventory', '/restocks', { restockId: `rs1-${orderId}`, orderId, lines: [{ sku: 'TSHIRT-RED-M', quantity: 2 }] });
    assert.equal(first.status, 201);
    assert.deepEqual(first.body, { restockId: `rs1-${orderId}`, orderId, lines: [{ sku: 'TSHIRT-RED-M', quantity: 2 }] });
    const again = await s.post('inventory', '/restocks', { restockId: `rs1-${orderId}`, orderId, lines: [{ sku: 'TSHIRT-RED-M', quantity: 2 }] });
    assert.equal(again.status, 200);
    assert.equal(await onHand('TSHIRT-RED-M'), before.shirt + 2);

    const tooMany = await s.post('inventory', '/restocks', {
      restockId: `rs2-${orderId}`,
      orderId,
      lines: [{ sku: 'MUG-LOGO', quantity: 1 }, { sku: 'TSHIRT-RED-M', quantity: 2 }],
    });
    assert.equal(tooMany.status, 409);
    assert.equal(tooMany.body.error.code, 'restock_exceeds_sold');
    assert.equal(tooMany.body.error.sku, 'TSHIRT-RED-M');
    assert.equal(tooMany.body.error.sold, 3);
    assert.equal(tooMany.body.error.restocked, 2);
    assert.equal(await onHand('MUG-LOGO'), before.mug); // the whole restock was refused
    const unsold = await s.post('inventory', '/restocks', { restockId: `rs3-${orderId}`, orderId, lines: [{ sku: 'HOODIE-GREY-L', quantity: 1 }] });
    assert.equal(unsold.body.error.code, 'restock_exceeds_sold');
    assert.equal(unsold.body.error.sold, 0);

    const reserved = uniqueId('order');
    await s.post('inventory', '/reservations', { orderId: reserved, lines: [{ sku: 'MUG-LOGO', quantity: 1 }] });
    const notSold = await s.post('inventory', '/restocks', { restockId: `rs-${reserved}`, orderId: reserved, lines: [{ sku: 'MUG-LOGO', quantity: 1 }] });
    assert.equal(notSold.status, 409);
    assert.equal(notSold.body.error.code, 'not_sold');
    await s.post('inventory', `/reservations/${reserved}/release`);
    assert.equal((await s.post('inventory', '/restocks', { restockId: `rs-none`, orderId: uniqueId('none'), lines: [{ sku: 'MUG-LOGO', quantity: 1 }] })).body.error.code, 'not_sold');
  });

  test('concurrent restocks of one order never return more than was sold', async () => {
    const orderId = await soldOrder([{ sku: 'HOODIE-GREY-L', quantity: 4 }]);
    const before = await onHand('HOODIE-GREY-L');
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        s.post('inventory', '/restocks', { restockId: `c${i}-${orderId}`, orderId, lines: [{ sku: 'HOODIE-GREY-L', quantity: 1 }] }),
      ),
    );
    assert.equal(answers.filter((a) => a.status === 201).length, 4);
    assert.equal(await onHand('HOODIE-GREY-L'), before + 4);
    const line = await s.db.reservationLine.findUniqueOrThrow({ where: { orderId_sku: { orderId, sku: 'HOODIE-GREY-L' } } });
    assert.equal(line.restocked, 4);
  });
});

// ---------------------------------------------------------------- loyalty

describe('loyalty reversals', () => {
  test('partial reversals take points back once per reversal id and never more than the award', async () => {
    const orderId = uniqueId('order');
    const customerId = uniqueId('cust');
    await s.post('loyalty', '/awards', { orderId, customerId, amountMinor: 10_000, currency: 'EUR' });
    const first = await s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: `rv1-${orderId}`, points: 30 });
    assert.equal(first.status, 201);
    assert.equal(first.body.kind, 'REVERSE');
    assert.equal(first.body.points, -30);
    assert.equal((await s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: `rv1-${orderId}`, points: 30 })).status, 200);
    const tooMany = await s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: `rv2-${orderId}`, points: 71 });
    assert.equal(tooMany.status, 409);
    assert.equal(tooMany.body.error.code, 'reversal_exceeds_award');
    assert.equal((await s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: `rv3-${orderId}`, points: 0 })).status, 201);
    // the checkout's full reverse takes what is left
    const rest = await s.post('loyalty', `/awards/${orderId}/reverse`);
    assert.equal(rest.body.points, -70);
    const account = await s.get('loyalty', `/accounts/${customerId}`);
    assert.equal(account.body.points, 0);
    const entries = await s.db.loyaltyEntry.findMany({ where: { orderId } });
    assert.equal(entries.reduce((sum, e) => sum + e.points, 0), 0);
    assert.equal(entries.length, 4);
    assert.equal((await s.post('loyalty', `/awards/${uniqueId('none')}/reversals`, { reversalId: 'x', points: 1 })).status, 404);
    assert.equal((await s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: 'y', points: -1 })).status, 400);
  });

  test('concurrent reversals never exceed the award', async () => {
    const orderId = uniqueId('order');
    const customerId = uniqueId('cust');
    await s.post('loyalty', '/awards', { orderId, customerId, amountMinor: 1000, currency: 'EUR' }); // 10 points
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.post('loyalty', `/awards/${orderId}/reversals`, { reversalId: `c${i}-${orderId}`, points: 3 })),
    );
    assert.equal(answers.filter((a) => a.status === 201).length, 3);
    assert.ok(answers.filter((a) => a.status !== 201).every((a) => a.body.error.code === 'reversal_exceeds_award'));
    assert.equal((await s.get('loyalty', `/accounts/${customerId}`)).body.points, 1);
  });
});

// ---------------------------------------------------------------- coupons

describe('coupon returns', () => {
  test('a redeemed coupon is returned once and can be used again by the same customer', async () => {
    const code = uniqueId('CODE').toUpperCase();
    await s.db.coupon.create({ data: { code, currency: 'EUR', kind: 'FIXED', value: 500, customerId: 'cust-alice' } });
    const orderId = uniqueId('order');
    await s.post('coupons', '/locks', { orderId, code, customerId: 'cust-alice', subtotalMinor: 3000, currency: 'EUR' });
    const notRedeemed = await s.post('coupons', `/locks/${orderId}/return`);
    assert.equal(notRedeemed.status, 409);
    assert.equal(notRedeemed.body.error.code, 'not_redeemed');
    await s.post('coupons', `/locks/${orderId}/redeem`);

    const returned = await s.post('coupons', `/locks/${orderId}/return`);
    assert.equal(returned.status, 200);
    assert.equal(returned.body.status, 'RETURNED');
    assert.equal((await s.post('coupons', `/locks/${orderId}/return`)).status, 200);
    const coupon = await s.db.coupon.findUniqueOrThrow({ where: { code } });
    assert.deepEqual([coupon.status, coupon.lockedBy], ['AVAILABLE', null]);
    // late redeem / unlock of the returned lock change nothing
    assert.equal((await s.post('coupons', `/locks/${orderId}/redeem`)).body.status, 'RETURNED');
    assert.equal((await s.post('coupons', `/locks/${orderId}/unlock`)).status, 409);
    assert.equal((await s.db.coupon.findUniqueOrThrow({ where: { code } })).status, 'AVAILABLE');

    const reuse = await s.post('coupons', '/locks', { orderId: uniqueId('order'), code, customerId: 'cust-alice', subtotalMinor: 3000, currency: 'EUR' });
    assert.equal(reuse.status, 201);
    assert.equal(reuse.body.discountMinor, 500);
  });
});
