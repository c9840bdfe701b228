// The reconciliation's business rules as pure functions: which period a run covers, and how
// the provider's truth and ours disagree for each reference (order id). No I/O and no clock:
// the workflow runs them on facts its activities gathered, and the unit tests run them alone.
import { checkoutWorkflowIdForOrder } from '../shared/checkout.ts';
import type { MismatchKind, ResolutionAction } from '../shared/reconciliation.ts';

export const DEFAULT_LOOKBACK_MS = 24 * 60 * 60_000;
export const DEFAULT_BOUNDARY_GRACE_MS = 5 * 60_000;

export interface ReconciliationInput {
  /** ISO 8601. Omitted (as the Schedule does): `start − lookbackMs`. */
  periodStart?: string;
  /** ISO 8601, exclusive. Omitted: the run's start time. */
  periodEnd?: string;
  /**
   * Anything that moved within this long before `periodEnd` is left for the next run: a
   * webhook or a checkout may still be on its way to bring both sides into line.
   */
  boundaryGraceMs?: number;
  /** Length of a derived period; longer than the Schedule's interval, so periods overlap. */
  lookbackMs?: number;
}

export interface Period {
  start: string;
  end: string;
  boundaryGraceMs: number;
}

/** The period a run covers, from its input and its start time (deterministic on replay). */
export function reconciliationPeriod(input: ReconciliationInput, startedAt: Date): Period {
  const end = input.periodEnd ? new Date(input.periodEnd) : startedAt;
  const start = input.periodStart ? new Date(input.periodStart) : new Date(end.getTime() - (input.lookbackMs ?? DEFAULT_LOOKBACK_MS));
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) throw new TypeError('periodStart/periodEnd must be ISO 8601 dates');
  if (start >= end) throw new RangeError(`empty period: ${start.toISOString()} is not before ${end.toISOString()}`);
  return { start: start.toISOString(), end: end.toISOString(), boundaryGraceMs: input.boundaryGraceMs ?? DEFAULT_BOUNDARY_GRACE_MS };
}

/** One line of the provider's settlement report (`GET /v1/settlements`). */
export interface SettlementTransaction {
  id: string;
  paymentId: string;
  reference: string;
  type: string; // AUTHORIZATION | CAPTURE | VOID | REFUND
  amountMinor: number;
  currency: string;
  createdAt: string;
}

/** The provider's view of one payment (`GET /v1/payments?reference=`). */
export interface ProviderPayment {
  id: string;
  reference: string;
  status: string;
  amountMinor: number;
  capturedMinor: number;
  refundedMinor: number;
  currency: string;
  updatedAt?: string | null;
  /** The payment's money movements, when the provider lists them. */
  transactions?: { id: string; type: string; amountMinor: number; at: string }[];
}

/** Our payments service's record for the order (`GET /payments/:orderId`). */
export interface OurPayment {
  paymentId: string;
  orderId: string;
  status: string;
  amountMinor: number;
  capturedMinor: number;
  refundedMinor: number;
  currency: string;
  pspPaymentId: string | null;
  updatedAt?: string | null;
}

/** Our orders service's record (`GET /orders/:orderId`). */
export interface OurOrder {
  id: string;
  status: 'PENDING' | 'AWAITING_PAYMENT' | 'PAID' | 'PARTIALLY_REFUNDED' | 'REFUNDED' | 'CANCELLED';
  totalMinor: number;
  currency: string;
  updatedAt?: string | null;
}

/**
 * Order statuses that say the customer paid. A refunded order was paid first; what was given
 * back, and by which channel (the provider, or a person by hand), is the refund's business, so
 * its status alone is no difference to act on.
 */
const PAID_STATUSES: ReadonlySet<OurOrder['status']> = new Set(['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED']);

/** Everything both sides say about one reference. */
export interface ReferenceFacts {
  reference: string;
  /** This reference's lines of the settlement report for the period. */
  settlement: SettlementTransaction[];
  providerPayments: ProviderPayment[];
  payment: OurPayment | null;
  order: OurOrder | null;
}

export interface Mismatch {
  /** The natural key: the same difference found by a later run has the same id. */
  id: string;
  kind: MismatchKind;
  reference: string;
  pspPaymentId: string | null;
  transactionId: string | null;
  /** What the rules do about it unattended; null: only an operator can decide. */
  autoAction: Exclude<ResolutionAction, 'accept'> | null;
  summary: string;
  details: Record<string, string | number | boolean | null>;
}

export interface Classification {
  mismatches: Mismatch[];
  /** References that agree on both sides. */
  matched: string[];
  /** References that moved inside the boundary grace: the next run looks at them. */
  deferred: string[];
}

/**
 * One mismatch per (kind, reference, provider payment). The provider captures a payment at
 * most once, so its id names the capture too, and unlike a transaction id it is known even
 * when the capture lies outside the period that brought the reference up.
 */
export function mismatchKey(kind: MismatchKind, reference: string, paymentKey: string | null): string {
  return `${kind.toLowerCase().replaceAll('_', '-')}:${reference}:${paymentKey ?? 'none'}`;
}

export function classifyAll(facts: ReferenceFacts[], period: Period): Classification {
  const result: Classification = { mismatches: [], matched: [], deferred: [] };
  const horizon = new Date(period.end).getTime() - period.boundaryGraceMs;
  for (const reference of facts) {
    if (lastMovement(reference) >= horizon) {
      result.deferred.push(reference.reference);
      continue;
    }
    const found = classifyReference(reference);
    if (found.length === 0) result.matched.push(reference.reference);
    result.mismatches.push(...found);
  }
  return result;
}

/** One page of a run's references, classified: what the workflow needs, without the facts themselves. */
export interface ReconciliationPage {
  /** References examined on this page (deferred ones included). */
  examined: number;
  mismatches: Mismatch[];
  deferred: string[];
  /** The last reference of this page when more follow (the next page starts after it); null on the last page. */
  nextCursor: string | null;
}

/**
 * Classifies a page of facts (in reference order). The page ends early, after the reference that
 * brings it to `maxMismatches`, so a day full of differences still gives pages of bounded size;
 * `nextCursor` is then that reference, and the facts after it are read again for the next page.
 */
export function classifyPage(facts: ReferenceFacts[], period: Period, nextCursor: string | null, maxMismatches: number): ReconciliationPage {
  const page: ReconciliationPage = { examined: 0, mismatches: [], deferred: [], nextCursor };
  for (const [i, reference] of facts.entries()) {
    const { mismatches, deferred } = classifyAll([reference], period);
    page.examined += 1;
    page.mismatches.push(...mismatches);
    page.deferred.push(...deferred);
    if (page.mismatches.length >= maxMismatches && i < facts.length - 1) return { ...page, nextCursor: reference.reference };
  }
  return page;
}

/** The newest change either side reports for the reference (ms since epoch). */
function lastMovement({ settlement, providerPayments, payment, order }: ReferenceFacts): number {
  const times = [
    ...settlement.map((t) => t.createdAt),
    ...providerPayments.flatMap((p) => [p.updatedAt, ...(p.transactions ?? []).map((t) => t.at)]),
    payment?.updatedAt,
    order?.updatedAt,
  ];
  return Math.max(-Infinity, ...times.filter((t): t is string => !!t).map((t) => new Date(t).getTime()));
}

/** How the two sides disagree about one reference; empty when they agree. */
export function classifyReference(facts: ReferenceFacts): Mismatch[] {
  const { reference, providerPayments, payment, order } = facts;
  const found: Mismatch[] = [];
  const ours = matchOurs(providerPayments, payment);
  const captureOf = (at: ProviderPayment) =>
    facts.settlement.find((t) => t.paymentId === at.id && t.type === 'CAPTURE')?.id ??
    at.transactions?.find((t) => t.type === 'CAPTURE')?.id ??
    null;
  const add = (kind: MismatchKind, at: ProviderPayment | null, autoAction: Mismatch['autoAction'], summary: string, extra: Mismatch['details'] = {}) =>
    found.push({
      id: mismatchKey(kind, reference, at?.id ?? payment?.pspPaymentId ?? payment?.paymentId ?? null),
      kind,
      reference,
      pspPaymentId: at?.id ?? payment?.pspPaymentId ?? null,
      transactionId: at ? captureOf(at) : null,
      autoAction,
      summary,
      details: {
        orderStatus: order?.status ?? null,
        orderTotalMinor: order?.totalMinor ?? null,
        ourPaymentStatus: payment?.status ?? null,
        ourCapturedMinor: payment?.capturedMinor ?? null,
        providerStatus: at?.status ?? null,
        providerCapturedMinor: at?.capturedMinor ?? null,
        providerRefundedMinor: at?.refundedMinor ?? null,
        ...extra,
      },
    });

  for (const at of providerPayments.filter((p) => p.capturedMinor > 0)) {
    const held = at.capturedMinor - at.refundedMinor;
    if (at !== ours || !order) {
      // Money we hold without a payment or order of ours: whose is it? Only a person can tell.
      if (held > 0) {
        const why = !order ? 'no order' : payment ? `our payment is ${payment.pspPaymentId ?? 'unlinked'}` : 'no payment record';
        add('MISSING_OURS', at, null, `provider captured ${at.capturedMinor} for ${reference}; we have ${why}`);
      }
      continue;
    }
    if (order.status === 'CANCELLED') {
      // The customer was told the order is off: give the money back.
      if (held > 0) add('STATUS_MISMATCH', at, 'refund', `captured ${held} still held for cancelled order ${reference}`, { refundMinor: held });
      continue;
    }
    const ourCaptured = payment?.capturedMinor ?? 0;
    if (at.capturedMinor !== order.totalMinor || (ourCaptured > 0 && ourCaptured !== at.capturedMinor)) {
      add('AMOUNT_MISMATCH', at, null, `provider captured ${at.capturedMinor}, order total ${order.totalMinor}, we recorded ${ourCaptured}`);
      continue;
    }
    if (!PAID_STATUSES.has(order.status) && held > 0) {
      // Paid at the provider: the checkout only has to hear about it. Foreign references have no checkout.
      const action = checkoutWorkflowIdForOrder(reference) ? 'complete-order' : null;
      add('STATUS_MISMATCH', at, action, `captured at the provider but order ${reference} is ${order.status}`);
    }
  }

  const oursCaptured = (payment?.capturedMinor ?? 0) > 0;
  const providerCaptured = providerPayments.some((p) => p.capturedMinor > 0);
  if (oursCaptured && (!ours || ours.capturedMinor === 0)) {
    add('MISSING_AT_PROVIDER', ours ?? null, null, `we recorded a capture of ${payment!.capturedMinor} the provider does not have`);
  } else if (order && PAID_STATUSES.has(order.status) && !providerCaptured && !oursCaptured) {
    add('MISSING_AT_PROVIDER', null, null, `order ${reference} is ${order.status} but nothing was captured at the provider`);
  }
  return found;
}

/** The provider payment our record points at; without a link, the only one there is. */
function matchOurs(providerPayments: ProviderPayment[], payment: OurPayment | null): ProviderPayment | undefined {
  if (!payment) return undefined;
  if (payment.pspPaymentId) return providerPayments.find((p) => p.id === payment.pspPaymentId);
  return providerPayments.length === 1 ? providerPayments[0] : undefined;
}
