// The Refund workflow's contract: input, state, operator actions (signals and Updates) and the query.
// Workflow-safe: no Node imports.
import type { SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { refundRequestIdFor } from './checkout.ts';
import { formatMoney } from './money.ts';
import { AmountMinorKey, CurrencyKey, CustomerIdKey, FlowStatusKey, NeedsAttentionKey, OrderIdKey, RegionKey } from './search-attributes.ts';

export interface RestockLine {
  sku: string;
  quantity: number;
}

export interface RefundInput {
  /** The caller's request id; the workflow id and every idempotency key derive from it. */
  requestId: string;
  orderId: string;
  /** Minor units, or 'full' = everything captured and not yet refunded. */
  amount: number | 'full';
  reason: string;
  restock: RestockLine[];
  /** Who asked (operator, customer service, 'checkout', 'reconciliation'). */
  requestedBy: string;
  /**
   * Refunds started by the system to give back money it must not keep (a cancelled checkout
   * whose payment was captured, a reconciliation fix) skip the approval step.
   */
  preApproved?: { by: string; reason: string };
  /** Overrides for tests and demos; production uses the defaults in workflows/refund.ts. */
  policy?: Partial<RefundPolicy>;
}

export interface RefundPolicy {
  /** Refunds above this amount (minor units) wait for an operator's approve/reject. */
  approvalThresholdMinor: number;
  /** Waiting for approval longer than this marks the refund ESCALATED. */
  escalateAfterMs: number;
  /** Waiting for approval longer than this rejects it (expired). */
  expireAfterMs: number;
  /** A full refund gives the coupon back to the customer. */
  returnCouponOnFullRefund: boolean;
}

export type RefundStatus =
  | 'VALIDATING'
  | 'AWAITING_APPROVAL'
  | 'ESCALATED'
  | 'REFUNDING'
  | 'NEEDS_OPERATOR'
  | 'APPLYING_EFFECTS'
  | 'SUCCEEDED'
  | 'REFUNDED_MANUALLY'
  | 'REJECTED'
  | 'ABANDONED';

export interface OperatorDecision {
  by: string;
  reason: string;
}

export interface RefundState {
  refundId: string;
  requestId: string;
  orderId: string;
  status: RefundStatus;
  amountMinor: number | null;
  currency: string | null;
  reason: string;
  requestedBy: string;
  approval: (OperatorDecision & { decision: 'approved' | 'rejected' | 'expired' | 'not_required' }) | null;
  escalated: boolean;
  /** The provider's last answer (refund status / failure reason). */
  provider: { status: string; failureReason: string | null; attempts: number } | null;
  manualReference: string | null;
  /** An operator's retry or manual refund being carried out (the refund still shows NEEDS_OPERATOR meanwhile). */
  operatorAction?: { action: 'retry' | 'refundManually' | 'abandon'; by: string; reason: string } | null;
  effects: { restocked: boolean; pointsReversed: number; couponReturned: boolean; orderStatus: string | null };
  failure: string | null;
}

export const approveRefundSignal = defineSignal<[OperatorDecision]>('approve');
export const rejectRefundSignal = defineSignal<[OperatorDecision]>('reject');
/** After a permanent provider rejection: try the provider again. */
export const retryRefundSignal = defineSignal<[OperatorDecision]>('retry');
/** After a permanent provider rejection: the money was paid back outside the provider. */
export const refundManuallySignal = defineSignal<[OperatorDecision & { reference: string }]>('refundManually');
/** After a permanent provider rejection: give up, with the reason on record. */
export const abandonRefundSignal = defineSignal<[OperatorDecision]>('abandon');
/** Nudge from the webhook endpoint: the provider has news about this refund. */
export const refundEventSignal = defineSignal<[{ eventId: string; type: string; refundId: string }]>('refundEvent');
export const refundStateQuery = defineQuery<RefundState>('state');

// The same operator actions as Updates (Temporal keeps signal and update names apart): the
// validator refuses an action the refund's state does not allow (shared/operator-actions.ts
// codes), and the refund answers with its state once the action is recorded.
/** Refused: not_awaiting_approval, already_decided, four_eyes (the requester cannot approve). */
export const approveRefundUpdate = defineUpdate<RefundState, [OperatorDecision]>('approve');
/** Refused: not_awaiting_approval, already_decided. */
export const rejectRefundUpdate = defineUpdate<RefundState, [OperatorDecision]>('reject');
/** Refused: not_waiting_for_operator, action_pending. */
export const retryRefundUpdate = defineUpdate<RefundState, [OperatorDecision]>('retry');
/** Refused: not_waiting_for_operator, action_pending, invalid_request (no reference). */
export const refundManuallyUpdate = defineUpdate<RefundState, [OperatorDecision & { reference: string }]>('refundManually');
/** Refused: not_waiting_for_operator, action_pending. */
export const abandonRefundUpdate = defineUpdate<RefundState, [OperatorDecision]>('abandon');

export function refundWorkflowId(requestId: string): string {
  return `refund-${requestId}`;
}
/** Our refund id (payments service, provider reference) = the workflow id. */
export const refundIdFor = refundWorkflowId;
export function refundRequestIdFromRefundId(refundId: string): string | null {
  return refundId.startsWith('refund-') ? refundId.slice('refund-'.length) : null;
}

/** The request id of a mismatch's refund (workflows/mismatch-resolution.ts); the workflow id and refund id derive from it. */
export function reconciliationRefundRequestId(mismatchId: string): string {
  return `${RECONCILIATION_PREFIX}${mismatchId.replace(/[^A-Za-z0-9_-]/g, '.')}`;
}
const RECONCILIATION_PREFIX = 'reconciliation-';
/** Every cancelled checkout's refund request id ends so (shared/checkout.ts refundRequestIdFor). */
const CANCELLED_CHECKOUT_SUFFIX = refundRequestIdFor('');

/**
 * True for request ids the system derives for its own refunds (a cancelled checkout's, a
 * reconciliation fix's): a caller's refund under one of them would stand in for the system's,
 * so the API refuses them.
 */
export function isReservedRefundRequestId(requestId: string): boolean {
  return requestId.endsWith(CANCELLED_CHECKOUT_SUFFIX) || requestId.startsWith(RECONCILIATION_PREFIX);
}

/**
 * Why a refund found under a request id is not the one `request` asks for (another order, another
 * requester, another amount), or null when it is, as far as its state tells. A workflow that finds
 * a refund under its own id must not take someone else's for its own money back.
 */
export function foreignRefund(found: RefundState, request: Pick<RefundInput, 'orderId' | 'amount' | 'requestedBy'>): string | null {
  if (found.orderId !== request.orderId) return `it refunds order ${found.orderId}, not ${request.orderId}`;
  if (found.requestedBy !== request.requestedBy) return `it was requested by ${found.requestedBy}, not ${request.requestedBy}`;
  if (typeof request.amount === 'number' && found.amountMinor !== null && found.amountMinor !== request.amount) {
    return `it is for ${found.amountMinor} minor units, not ${request.amount}`;
  }
  return null;
}

/**
 * What a refund inherits from the order it gives money back for (read from the order's
 * checkout by the API, from the parent run by a parent workflow); each may be unknown.
 */
export interface RefundOrigin {
  region?: string | undefined;
  customerId?: string | undefined;
  currency?: string | undefined;
}

/** The refund's one line in the Temporal UI: the money, the order, why; nothing about the person. */
export function refundSummary(input: Pick<RefundInput, 'orderId' | 'amount' | 'reason'>, currency?: string): string {
  const amount =
    input.amount === 'full'
      ? 'in full'
      : currency
        ? formatMoney({ amountMinor: input.amount, currency })
        : `${input.amount} minor units`;
  return `Refund ${amount} of order ${input.orderId} · ${oneLine(input.reason, 60)}`;
}

/** The search attributes a refund starts with, so it is findable before its first workflow task. */
export function refundStartAttributes(input: Pick<RefundInput, 'orderId' | 'amount'>, origin: RefundOrigin = {}): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [
    { key: FlowStatusKey, value: 'VALIDATING' satisfies RefundStatus },
    { key: NeedsAttentionKey, value: false },
    { key: OrderIdKey, value: input.orderId },
  ];
  if (typeof input.amount === 'number') pairs.push({ key: AmountMinorKey, value: input.amount });
  if (origin.currency) pairs.push({ key: CurrencyKey, value: origin.currency });
  if (origin.region) pairs.push({ key: RegionKey, value: origin.region });
  if (origin.customerId) pairs.push({ key: CustomerIdKey, value: origin.customerId });
  return pairs;
}

/** Free text shortened to one line for a summary. */
function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
