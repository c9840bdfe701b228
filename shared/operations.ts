// What operators see and do across workflows: the "retry the refused step now" signal that
// every workflow with a slow-retry loop accepts, and the shape of the operations list the
// API serves (GET /operations/runs) to the operations page (GET /ops).
import { defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CheckoutState } from './checkout.ts';
import type { RefundState } from './refunds.ts';

/**
 * A step a service refused, or one whose service stayed unavailable through its bounded attempts,
 * is retried on a slow durable timer (up to an hour apart) while the run shows NeedsAttention and
 * its current details name the step and the last error; once an operator has fixed the cause (or
 * the service is back), this signal makes the next attempt now. A wait on the provider that has
 * stalled (workflows/payment-outcome.ts, refund-outcome.ts) shows the same way, and this signal
 * makes it ask the provider now.
 * Accepted by checkout and refund; refused (logged, shown in the run's details) when nothing is waiting.
 * Sent by POST /operations/runs/:workflowId/retry-step.
 */
export const retryStepSignal = defineSignal<[RetryStepRequest]>('retryStep');
/**
 * The same as an Update: answers the run's state (a checkout's or a refund's `state` query) once
 * the retry is requested; refused with `no_step_waiting` when nothing waits.
 */
export const retryStepUpdate = defineUpdate<CheckoutState | RefundState, [RetryStepRequest]>('retryStep');

export interface RetryStepRequest {
  by: string;
  reason: string;
}

/** An action the operations page offers for a run; each maps to one existing API call. */
export type OperatorActionName =
  | 'approveRefund' // POST /refunds/:id/approve        {by, reason}
  | 'rejectRefund' // POST /refunds/:id/reject          {by, reason}
  | 'retryRefund' // POST /refunds/:id/retry            {by, reason}   (NEEDS_OPERATOR)
  | 'refundManually' // POST /refunds/:id/refund-manually {by, reason, reference}
  | 'abandonRefund' // POST /refunds/:id/abandon        {by, reason}
  | 'resolveMismatch' // POST /reconciliation/mismatches/:id/resolve {by, note, ...}
  | 'cancelCheckout' // POST /checkouts/:id/cancel      {reason}
  | 'retryStep'; // POST /operations/runs/:workflowId/retry-step {by, reason}

/** One run in GET /operations/runs: what the visibility store and the run's metadata say. */
export interface OperationsRun {
  workflowId: string;
  runId: string;
  workflowType: string;
  startTime: string;
  /** Search attributes (shared/search-attributes.ts); null where the workflow sets none. */
  flowStatus: string | null;
  checkoutStep: string | null;
  orderId: string | null;
  amountMinor: number | null;
  currency: string | null;
  region: string | null;
  needsAttention: boolean;
  /** The start's static summary and the workflow's current details (Markdown, as the Web UI shows them). */
  summary: string | null;
  currentDetails: string | null;
  /** The actions this run accepts in its current state. */
  actions: OperatorActionName[];
  /** The run in the Temporal Web UI, when its address is configured. */
  webUiUrl: string | null;
}

/** What happened in a run, as GET /operations/runs/:workflowId/history tells it. */
export type HistoryLineKind =
  | 'workflowStarted'
  | 'activityScheduled'
  | 'activityCompleted'
  | 'activityFailed'
  | 'activityTimedOut'
  | 'activityCanceled'
  | 'timerStarted'
  | 'timerFired'
  | 'timerCanceled'
  | 'signalReceived'
  | 'updateAccepted'
  | 'updateCompleted'
  | 'updateFailed'
  | 'childWorkflowStarted'
  | 'childWorkflowCompleted'
  | 'childWorkflowFailed'
  | 'searchAttributesUpserted'
  | 'workflowCompleted'
  | 'workflowFailed'
  | 'workflowCanceled'
  | 'workflowTerminated'
  | 'workflowTimedOut'
  | 'workflowContinuedAsNew';

/** One business-relevant event of a run's history; workflow tasks and other bookkeeping are left out. */
export interface HistoryLine {
  eventId: number;
  /** ISO 8601. */
  time: string;
  kind: HistoryLineKind;
  /** One sentence for a person: the step's summary (as the workflow set it), never a signal's arguments. */
  text: string;
}

/** GET /operations/runs/:workflowId/history: the newest lines, oldest first. */
export interface RunHistory {
  workflowId: string;
  runId: string;
  events: HistoryLine[];
  /** True when older lines were left out (only the last HISTORY_LINE_LIMIT, api/history-summary.ts, are kept). */
  truncated: boolean;
}
