// The Refund workflow's contract: input, state, operator signals and the query.
// Workflow-safe: no Node imports.
import { defineQuery, defineSignal } from '@temporalio/workflow';

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

export function refundWorkflowId(requestId: string): string {
  return `refund-${requestId}`;
}
/** Our refund id (payments service, provider reference) = the workflow id. */
export const refundIdFor = refundWorkflowId;
export function refundRequestIdFromRefundId(refundId: string): string | null {
  return refundId.startsWith('refund-') ? refundId.slice('refund-'.length) : null;
}
