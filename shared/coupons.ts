// Coupon issuance and campaign distribution: the workflows' contracts.
// Workflow-safe: no Node imports.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** Task queue of the coupon-grant activities; its worker carries the global rate limit. */
export const COUPON_GRANTS_TASK_QUEUE = 'coupon-grants';

export interface IssuanceInput {
  /** The caller's request id; workflow id, quota reservation and grant are keyed by it. */
  requestId: string;
  campaignId: string;
  customerId: string;
}

export type IssuanceStatus = 'ISSUED' | 'EXHAUSTED' | 'LIMIT_REACHED' | 'CAMPAIGN_CLOSED' | 'FAILED';

/** The single source of truth for the caller: issued (with the code) or why not. */
export interface IssuanceResult {
  requestId: string;
  campaignId: string;
  customerId: string;
  status: IssuanceStatus;
  couponCode: string | null;
  reason: string | null;
}

export interface DistributionInput {
  distributionId: string;
  campaignId: string;
  /** Recipients per batch (each batch is one child workflow). */
  batchSize?: number;
  /** Batches in flight at once. */
  parallelBatches?: number;
  /** Carried over continue-as-new: recipients [0, offset) are done. */
  offset?: number;
  /** Carried over continue-as-new. */
  totals?: DistributionTotals;
  /** Carried over continue-as-new: how many recipients the API stored (counted once). */
  recipients?: number;
  /** Carried over continue-as-new: paused by signal and not resumed yet. */
  paused?: boolean;
}

export interface DistributionTotals {
  issued: number;
  exhausted: number;
  limitReached: number;
  /** Not issued for any other reason (campaign closed, service unavailable for too long). */
  failed: number;
}

/** PAUSED: paused by signal and the batches in flight then have ended (nothing moves until resumed). */
export type DistributionStatus = 'RUNNING' | 'PAUSED' | 'CANCELLED' | 'COMPLETED';

export interface DistributionProgress {
  distributionId: string;
  campaignId: string;
  status: DistributionStatus;
  recipients: number;
  processed: number;
  totals: DistributionTotals;
}

export const pauseDistributionSignal = defineSignal('pause');
export const resumeDistributionSignal = defineSignal('resume');
export const cancelDistributionSignal = defineSignal<[{ by: string; reason: string }]>('cancel');
export const distributionProgressQuery = defineQuery<DistributionProgress>('progress');

export function issuanceWorkflowId(requestId: string): string {
  return `coupon-issuance-${requestId}`;
}
export function distributionWorkflowId(distributionId: string): string {
  return `coupon-distribution-${distributionId}`;
}
/** The request id of one recipient of a distribution: the same on every retry and replay. */
export function distributionRequestId(distributionId: string, customerId: string): string {
  return `${distributionId}:${customerId}`;
}
