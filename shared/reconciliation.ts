// Reconciliation of the provider's settlement report against our payments and
// orders. Workflow-safe: no Node imports.
import type { SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { FlowStatusKey, NeedsAttentionKey, OrderIdKey } from './search-attributes.ts';

export const RECONCILIATION_SCHEDULE_ID = 'reconciliation';

export type MismatchKind =
  /** The provider has a money movement for a reference we have no payment for. */
  | 'MISSING_OURS'
  /** We record a capture the provider does not have. */
  | 'MISSING_AT_PROVIDER'
  /** Both have it, statuses disagree (e.g. captured at provider, order not PAID). */
  | 'STATUS_MISMATCH'
  /** Both have it, amounts disagree. */
  | 'AMOUNT_MISMATCH';

export type MismatchStatus = 'OPEN' | 'AUTO_RESOLVED' | 'RESOLVED';

/** What an operator (or the automatic rules) can do about a mismatch. */
export type ResolutionAction =
  /** Signal/resume the checkout so it completes the order from the provider's truth. */
  | 'complete-order'
  /** Refund the captured amount at the provider (e.g. captured for a cancelled order). */
  | 'refund'
  /** Nothing to do in our systems (e.g. fixed by hand); close it with a note. */
  | 'accept';

export interface ResolveRequest {
  action: ResolutionAction;
  by: string;
  note: string;
}

export interface MismatchState {
  mismatchId: string;
  status: MismatchStatus;
  resolution: ResolveRequest | null;
  /** The decision being carried out now (a refund, a nudged checkout), if any. */
  pending?: ResolveRequest | null;
}

export const resolveMismatchSignal = defineSignal<[ResolveRequest]>('resolve');
/**
 * The same as an Update: answers the mismatch's state once the decision is taken up; refused with
 * `already_resolved`, `action_pending` (another decision is being carried out) or `invalid_request`.
 */
export const resolveMismatchUpdate = defineUpdate<MismatchState, [ResolveRequest]>('resolve');
export const mismatchStateQuery = defineQuery<MismatchState>('state');

export const RESOLUTION_ACTIONS: readonly ResolutionAction[] = ['complete-order', 'refund', 'accept'];

export function mismatchWorkflowId(mismatchId: string): string {
  return `mismatch-${mismatchId}`;
}

/** Where a reconciliation run is (its FlowStatus is RUNNING, then FINISHED). */
export type ReconciliationStep = 'COLLECTING_FACTS' | 'RECORDING_MISMATCHES' | 'SETTLING' | 'FINISHED';

export interface ReconciliationProgress {
  step: ReconciliationStep;
  periodStart: string;
  periodEnd: string;
  /** Null until the step that knows them has run. */
  examined: number | null;
  detected: number | null;
  settled: number;
}

/** "Where is this run now?": the step, the period, the counts so far. */
export const reconciliationProgressQuery = defineQuery<ReconciliationProgress>('progress');

/** A run's one line in the Temporal UI; `trigger` says who started it. */
export function reconciliationSummary(trigger: 'schedule' | 'operator'): string {
  return `Reconciliation · provider settlement report against our payments and orders · started by ${trigger === 'schedule' ? 'the schedule' : 'an operator'}`;
}

/** What a run starts with: running, nobody needed (its mismatches wait for people in their own workflows). */
export function reconciliationStartAttributes(): SearchAttributePair[] {
  return [
    { key: FlowStatusKey, value: 'RUNNING' },
    { key: NeedsAttentionKey, value: false },
  ];
}

export interface MismatchFacts {
  mismatchId: string;
  kind: MismatchKind;
  /** Our order id, or the provider's reference when no order of ours stands for it. */
  reference: string;
  summary: string;
}

/** A mismatch's one line in the Temporal UI: which, what kind, what differs (amounts and references only). */
export function mismatchSummary({ mismatchId, kind, summary }: MismatchFacts): string {
  return `Mismatch ${mismatchId} · ${kind} · ${summary}`;
}

/** A mismatch starts OPEN and waiting for an operator's `resolve`. */
export function mismatchStartAttributes({ reference }: MismatchFacts): SearchAttributePair[] {
  return [
    { key: FlowStatusKey, value: 'OPEN' satisfies MismatchStatus },
    { key: NeedsAttentionKey, value: true },
    { key: OrderIdKey, value: reference },
  ];
}
