// Reconciliation of the provider's settlement report against our payments and
// orders. Workflow-safe: no Node imports.
import { defineQuery, defineSignal } from '@temporalio/workflow';

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

export const resolveMismatchSignal = defineSignal<[ResolveRequest]>('resolve');
export const mismatchStateQuery = defineQuery<{ mismatchId: string; status: MismatchStatus; resolution: ResolveRequest | null }>('state');

export function mismatchWorkflowId(mismatchId: string): string {
  return `mismatch-${mismatchId}`;
}
