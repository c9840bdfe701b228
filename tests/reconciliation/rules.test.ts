// The reconciliation rules alone: every kind of difference, what is done about it unattended,
// and what is left for the next run because it moved too close to the period's end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classifyAll,
  classifyPage,
  classifyReference,
  DEFAULT_BOUNDARY_GRACE_MS,
  DEFAULT_LOOKBACK_MS,
  reconciliationPeriod,
  type OurOrder,
  type OurPayment,
  type Period,
  type ProviderPayment,
  type ReferenceFacts,
} from '../../workflows/reconciliation-rules.ts';

const OLD = '2026-11-29T10:00:00.000Z';
const period: Period = { start: '2026-11-29T00:00:00.000Z', end: '2026-11-29T12:00:00.000Z', boundaryGraceMs: 5 * 60_000 };

function provider(extra: Partial<ProviderPayment> = {}): ProviderPayment {
  return { id: 'psp_1', reference: 'order-k1', status: 'CAPTURED', amountMinor: 5000, capturedMinor: 5000, refundedMinor: 0, currency: 'EUR', updatedAt: OLD, ...extra };
}
function ours(extra: Partial<OurPayment> = {}): OurPayment {
  return { paymentId: 'pay_1', orderId: 'order-k1', status: 'CAPTURED', amountMinor: 5000, capturedMinor: 5000, refundedMinor: 0, currency: 'EUR', pspPaymentId: 'psp_1', updatedAt: OLD, ...extra };
}
function order(extra: Partial<OurOrder> = {}): OurOrder {
  return { id: 'order-k1', status: 'PAID', totalMinor: 5000, currency: 'EUR', updatedAt: OLD, ...extra };
}
function facts(extra: Partial<ReferenceFacts> = {}): ReferenceFacts {
  return {
    reference: 'order-k1',
    settlement: [{ id: 'txn_cap_1', paymentId: 'psp_1', reference: 'order-k1', type: 'CAPTURE', amountMinor: 5000, currency: 'EUR', createdAt: OLD }],
    providerPayments: [provider()],
    payment: ours(),
    order: order(),
    ...extra,
  };
}

test('a paid order with one matching capture is not a mismatch', () => {
  assert.deepEqual(classifyReference(facts()), []);
  assert.deepEqual(classifyAll([facts()], period), { mismatches: [], matched: ['order-k1'], deferred: [] });
});

test('captured at the provider while the order awaits payment: the checkout is nudged to complete it', () => {
  const [m, ...rest] = classifyReference(facts({ order: order({ status: 'AWAITING_PAYMENT' }), payment: ours({ status: 'CAPTURE_PENDING', capturedMinor: 0 }) }));
  assert.equal(rest.length, 0);
  assert.equal(m!.kind, 'STATUS_MISMATCH');
  assert.equal(m!.autoAction, 'complete-order');
  assert.equal(m!.id, 'status-mismatch:order-k1:psp_1');
  assert.equal(m!.transactionId, 'txn_cap_1');
  assert.equal(m!.pspPaymentId, 'psp_1');
});

test('a reference no checkout owns cannot be nudged: it waits for an operator', () => {
  const f = facts({ reference: 'legacy-42', order: order({ id: 'legacy-42', status: 'AWAITING_PAYMENT' }) });
  const [m] = classifyReference(f);
  assert.equal(m!.kind, 'STATUS_MISMATCH');
  assert.equal(m!.autoAction, null);
});

test('money held for a cancelled order is refunded, and a full refund settles it', () => {
  const [m] = classifyReference(facts({ order: order({ status: 'CANCELLED' }), providerPayments: [provider({ refundedMinor: 1000 })] }));
  assert.equal(m!.kind, 'STATUS_MISMATCH');
  assert.equal(m!.autoAction, 'refund');
  assert.equal(m!.details.refundMinor, 4000);
  assert.deepEqual(classifyReference(facts({ order: order({ status: 'CANCELLED' }), providerPayments: [provider({ refundedMinor: 5000, status: 'REFUNDED' })] })), []);
});

test('a refunded order was paid: refunded at the provider or by hand, its status is no difference', () => {
  const partly = facts({ order: order({ status: 'PARTIALLY_REFUNDED' }), providerPayments: [provider({ refundedMinor: 1500, status: 'PARTIALLY_REFUNDED' })], payment: ours({ refundedMinor: 1500 }) });
  assert.deepEqual(classifyReference(partly), []);
  // refunded by a person outside the provider: the provider still holds the capture
  const byHand = facts({ order: order({ status: 'REFUNDED' }) });
  assert.deepEqual(classifyReference(byHand), []);
  // but a refunded order with nothing captured anywhere is still a capture missing at the provider
  const [missing] = classifyReference(facts({ order: order({ status: 'REFUNDED' }), providerPayments: [], payment: ours({ capturedMinor: 0, pspPaymentId: null }), settlement: [] }));
  assert.equal(missing!.kind, 'MISSING_AT_PROVIDER');
  assert.match(missing!.summary, /is REFUNDED but nothing was captured/);
});

test('different amounts are flagged for an operator, never acted on', () => {
  const [m] = classifyReference(facts({ providerPayments: [provider({ capturedMinor: 4500 })] }));
  assert.equal(m!.kind, 'AMOUNT_MISMATCH');
  assert.equal(m!.autoAction, null);
  const [ourSide] = classifyReference(facts({ payment: ours({ capturedMinor: 4000 }) }));
  assert.equal(ourSide!.kind, 'AMOUNT_MISMATCH');
  // an order still awaiting payment with a different capture is not completed either
  const [awaiting] = classifyReference(facts({ order: order({ status: 'AWAITING_PAYMENT', totalMinor: 6000 }) }));
  assert.equal(awaiting!.kind, 'AMOUNT_MISMATCH');
});

test('a capture for a reference we have no order or payment for is flagged as missing ours', () => {
  const [m] = classifyReference(facts({ reference: 'order-ghost', payment: null, order: null }));
  assert.equal(m!.kind, 'MISSING_OURS');
  assert.equal(m!.autoAction, null);
  assert.equal(m!.id, 'missing-ours:order-ghost:psp_1');
});

test('a second captured provider payment for a paid order is money we have no record of', () => {
  const second = provider({ id: 'psp_2' });
  const found = classifyReference(facts({ providerPayments: [provider(), second] }));
  assert.deepEqual(found.map((m) => [m.kind, m.pspPaymentId]), [['MISSING_OURS', 'psp_2']]);
});

test('a capture we record that the provider does not have is flagged as missing at the provider', () => {
  const [m] = classifyReference(facts({ providerPayments: [provider({ status: 'AUTHORIZED', capturedMinor: 0 })] }));
  assert.equal(m!.kind, 'MISSING_AT_PROVIDER');
  assert.equal(m!.autoAction, null);
  const [none] = classifyReference(facts({ providerPayments: [], settlement: [] }));
  assert.equal(none!.kind, 'MISSING_AT_PROVIDER');
  assert.equal(none!.id, 'missing-at-provider:order-k1:psp_1');
  // a PAID order with no capture anywhere breaks the same promise
  const [paidOnly] = classifyReference(facts({ providerPayments: [], settlement: [], payment: null }));
  assert.equal(paidOnly!.kind, 'MISSING_AT_PROVIDER');
});

test('anything that moved inside the boundary grace is left for the next run', () => {
  const recent = new Date(new Date(period.end).getTime() - 60_000).toISOString();
  const moving = facts({
    order: order({ status: 'AWAITING_PAYMENT' }),
    settlement: [{ id: 'txn_cap_1', paymentId: 'psp_1', reference: 'order-k1', type: 'CAPTURE', amountMinor: 5000, currency: 'EUR', createdAt: recent }],
  });
  assert.deepEqual(classifyAll([moving], period), { mismatches: [], matched: [], deferred: ['order-k1'] });
  // the next run, whose period ends later, sees it and flags it under the same id
  const next = { ...period, end: '2026-11-29T12:30:00.000Z' };
  const { mismatches } = classifyAll([moving], next);
  assert.deepEqual(mismatches.map((m) => m.id), ['status-mismatch:order-k1:psp_1']);
});

test('the same difference found in a later, overlapping period keeps its id', () => {
  const inPeriod = classifyReference(facts({ order: order({ status: 'CANCELLED' }) }));
  // the capture fell out of the settlement window; our payment's update brought the reference up
  const later = classifyReference(facts({ order: order({ status: 'CANCELLED' }), settlement: [] }));
  assert.equal(later[0]!.id, inPeriod[0]!.id);
  assert.equal(later[0]!.transactionId, null);
});

test('a scheduled run without arguments covers the lookback before its start', () => {
  const startedAt = new Date('2026-11-29T12:00:00.000Z');
  const derived = reconciliationPeriod({}, startedAt);
  assert.deepEqual(derived, {
    start: new Date(startedAt.getTime() - DEFAULT_LOOKBACK_MS).toISOString(),
    end: startedAt.toISOString(),
    boundaryGraceMs: DEFAULT_BOUNDARY_GRACE_MS,
  });
  const explicit = reconciliationPeriod({ periodStart: period.start, periodEnd: period.end, boundaryGraceMs: 0 }, startedAt);
  assert.deepEqual(explicit, { start: period.start, end: period.end, boundaryGraceMs: 0 });
  assert.throws(() => reconciliationPeriod({ periodStart: period.end, periodEnd: period.start }, startedAt), RangeError);
});

test('a capture refunded in full needs nothing, whatever the order says', () => {
  const refunded = provider({ status: 'REFUNDED', refundedMinor: 5000 });
  assert.deepEqual(classifyReference(facts({ order: order({ status: 'AWAITING_PAYMENT' }), providerPayments: [refunded] })), []);
  assert.deepEqual(classifyReference(facts({ payment: null, order: null, providerPayments: [refunded] })), []);
});

test('a refund the provider made inside the grace defers the reference too', () => {
  const recent = new Date(new Date(period.end).getTime() - 1_000).toISOString();
  const moved = provider({ transactions: [{ id: 'txn_ref_1', type: 'REFUND', amountMinor: 5000, at: recent }] });
  assert.deepEqual(classifyAll([facts({ order: order({ status: 'CANCELLED' }), providerPayments: [moved], settlement: [] })], period).deferred, ['order-k1']);
});

test('a page of references ends early once it holds enough mismatches; the next page starts after its last reference', () => {
  const at = (key: string, extra: Partial<ReferenceFacts> = {}) => {
    const reference = `order-${key}`;
    const psp = `psp_${key}`;
    return facts({
      reference,
      settlement: [],
      providerPayments: [provider({ id: psp, reference })],
      payment: ours({ orderId: reference, pspPaymentId: psp }),
      order: order({ id: reference }),
      ...extra,
    });
  };
  const short = (key: string) => at(key, { providerPayments: [provider({ id: `psp_${key}`, reference: `order-${key}`, capturedMinor: 4000 })] });
  const recent = new Date(new Date(period.end).getTime() - 1_000).toISOString();
  const page = [at('a'), short('b'), at('c', { order: order({ id: 'order-c', updatedAt: recent }) }), short('d'), at('e'), short('f')];

  const cut = classifyPage(page, period, 'order-z', 2);
  assert.deepEqual(cut.mismatches.map((m) => m.id), ['amount-mismatch:order-b:psp_b', 'amount-mismatch:order-d:psp_d']);
  assert.deepEqual(cut.deferred, ['order-c']);
  assert.equal(cut.examined, 4);
  assert.equal(cut.nextCursor, 'order-d', 'the rest of the page is read again after order-d');

  const whole = classifyPage(page, period, null, 100);
  assert.equal(whole.examined, 6);
  assert.equal(whole.mismatches.length, 3);
  assert.equal(whole.nextCursor, null, 'the last page says so');
});
