// Coupon issuance and campaign distribution: the workflows' contracts.
// Workflow-safe: no Node imports.
import type { SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { CustomerIdKey, FlowStatusKey, NeedsAttentionKey } from './search-attributes.ts';

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

/** Who pauses, resumes or cancels a distribution, and why. */
export interface DistributionAction {
  by: string;
  reason?: string;
}
// The argument is optional on the signals: senders from before it existed sent none.
export const pauseDistributionSignal = defineSignal<[DistributionAction?]>('pause');
export const resumeDistributionSignal = defineSignal<[DistributionAction?]>('resume');
export const cancelDistributionSignal = defineSignal<[{ by: string; reason: string }]>('cancel');
// The same as Updates, answering the distribution's progress once recorded (a pause shows PAUSED
// once the wave in flight has ended). Refused: already_paused, already_cancelled; not_paused; already_cancelled.
export const pauseDistributionUpdate = defineUpdate<DistributionProgress, [DistributionAction]>('pause');
export const resumeDistributionUpdate = defineUpdate<DistributionProgress, [DistributionAction]>('resume');
export const cancelDistributionUpdate = defineUpdate<DistributionProgress, [{ by: string; reason: string }]>('cancel');
export const distributionProgressQuery = defineQuery<DistributionProgress>('progress');

/** Where one issuance is: its step while RUNNING, then its final IssuanceStatus. */
export type IssuanceStep = 'RESERVING_QUOTA' | 'GRANTING' | 'CONFIRMING' | 'RELEASING_QUOTA';

export interface IssuanceState {
  requestId: string;
  campaignId: string;
  status: 'RUNNING' | IssuanceStatus;
  step: IssuanceStep | null;
  /** Grant attempts so far (each followed by "did it happen?"). */
  grantAttempts: number;
  result: IssuanceResult | null;
}
export const issuanceStateQuery = defineQuery<IssuanceState>('state');

/** One batch of a distribution: how far through its page of recipients. */
export interface DistributionBatchProgress {
  distributionId: string;
  offset: number;
  limit: number;
  /** Recipients read for this page (null until read) and those already issued to or refused. */
  recipients: number | null;
  processed: number;
  totals: DistributionTotals;
}
export const distributionBatchProgressQuery = defineQuery<DistributionBatchProgress>('progress');

/** An issuance's one line in the Temporal UI (the customer id is an opaque account id). */
export function issuanceSummary({ campaignId, customerId }: IssuanceInput): string {
  return `Coupon of campaign ${campaignId} for customer ${customerId}`;
}

export function issuanceStartAttributes({ customerId }: IssuanceInput): SearchAttributePair[] {
  return [
    { key: FlowStatusKey, value: 'RUNNING' },
    { key: NeedsAttentionKey, value: false },
    { key: CustomerIdKey, value: customerId },
  ];
}

export function distributionSummary(campaignId: string, recipients: number): string {
  return `Coupons of campaign ${campaignId} for ${recipients} ${recipients === 1 ? 'customer' : 'customers'}`;
}

export function distributionBatchSummary(campaignId: string, offset: number, limit: number): string {
  return `Coupons of campaign ${campaignId} · recipients ${offset + 1}–${offset + limit}`;
}

/** Distributions and their batches start running; nothing in them waits for a person. */
export function distributionStartAttributes(): SearchAttributePair[] {
  return [
    { key: FlowStatusKey, value: 'RUNNING' satisfies DistributionStatus },
    { key: NeedsAttentionKey, value: false },
  ];
}

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
