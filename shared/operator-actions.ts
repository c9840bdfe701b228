// Why a run refuses an operator action. Every action (approve a refund, cancel a checkout,
// resolve a mismatch, pause a distribution, retry a step, ...) is a Temporal Update whose
// validator runs the run's business rule against its current state, and the same action as a
// signal runs the same rule. A refusal is an ApplicationFailure whose `type` is one of these
// codes; the API answers it as 409 with the code, the Web UI shows it on the ignored signal.
// Workflow-safe: no Node imports.
import { ApplicationFailure } from '@temporalio/common';

export type RefusalCode =
  /** approve/reject: the refund is not waiting for an approval (it needs none, or has moved on). */
  | 'not_awaiting_approval'
  /** approve: the person who requested the refund cannot approve it. */
  | 'four_eyes'
  /** approve/reject: someone already decided (or the approval expired). */
  | 'already_decided'
  /** retry/refundManually/abandon: the refund is not waiting for an operator. */
  | 'not_waiting_for_operator'
  /** An operator's earlier action is still being carried out. */
  | 'action_pending'
  /** retryStep: no refused step or stalled provider wait is waiting. */
  | 'no_step_waiting'
  /** checkout cancel: capture has started, the money moves; refund it instead. */
  | 'capture_started'
  /** checkout cancel: the checkout is already being cancelled. */
  | 'already_cancelling'
  /** resolve: the mismatch is already resolved. */
  | 'already_resolved'
  | 'already_paused'
  | 'not_paused'
  | 'already_cancelled'
  /** The update's argument is malformed (a missing `by`, an unknown action). */
  | 'invalid_request';

export const REFUSAL_CODES: readonly RefusalCode[] = [
  'not_awaiting_approval',
  'four_eyes',
  'already_decided',
  'not_waiting_for_operator',
  'action_pending',
  'no_step_waiting',
  'capture_started',
  'already_cancelling',
  'already_resolved',
  'already_paused',
  'not_paused',
  'already_cancelled',
  'invalid_request',
];

/** Why an action does not apply to the run as it stands. */
export interface Refusal {
  code: RefusalCode;
  message: string;
}

/** The failure a validator throws: non-retryable, its `type` the refusal code. */
export function refusalFailure({ code, message }: Refusal): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, code);
}

/** Who acts and why: every operator action's argument carries at least this. */
export interface ActingOperator {
  /** The verified token's subject (the API fills it; a signal sender types it). */
  by: string;
  reason?: string;
}
