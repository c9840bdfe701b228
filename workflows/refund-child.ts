// How a workflow that must give money back does it: it starts the Refund workflow
// (workflows/refund.ts) as a child under an id derived from its own request, and waits for the
// outcome. The id makes a second attempt harmless: a refund already under way or finished is
// found and reported, never started again; only one that failed or was terminated (no answer at
// all) is started again, and the refund's own idempotency keys make that safe. A refund found under
// the id that is for another order, requester or amount is not taken for ours: reading it fails
// (`foreign_refund`), so the caller keeps the money as not returned and shows it to an operator (a
// checkout's refused-step wait, a mismatch left OPEN). The child outlives its parent: money on its
// way back is not abandoned because the workflow that asked closed.
//
// A refund found running (started by someone else, say waiting there for an operator) is read at
// doubling intervals up to an hour; past an hour the wait has stalled and shows it to the caller's
// operators until the refund ends. That bound matters to a checkout, which cannot continue as new
// in the middle of its compensation: about 11 history events a check, so ≤ 150 events in the first
// hour and ≤ 270 a day after it — half a year before Temporal's 51,200-event limit.
import {
  ChildWorkflowFailure,
  condition,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  sleep,
  startChild,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { RefundWorkflowOutcome, RefundChildActivities } from '../activities/refund-child.ts';
import {
  refundStartAttributes,
  refundSummary,
  refundWorkflowId,
  type RefundInput,
  type RefundOrigin,
  type RefundState,
  type RefundStatus,
} from '../shared/refunds.ts';
import { CurrencyKey, CustomerIdKey, RegionKey } from '../shared/search-attributes.ts';
import type { refund } from './refund.ts';
import { WORKFLOW_TYPES } from '../shared/workflow-types.ts';
import { STALLED_CHECK_INTERVAL_MS } from './provider-wait.ts';
import type { ProviderStalls } from './refused-steps.ts';

/**
 * Guards the bounded wait for a refund started elsewhere (checks slowing to hourly, the stall shown):
 * a run recorded before replays its 30 s checks without it and turns bounded at its next new check.
 */
export const BOUNDED_REFUND_WAIT_PATCH = 'bounded-existing-refund-wait';
/** A refund started elsewhere that has not ended after this has stalled its caller: an operator must look. */
export const EXISTING_REFUND_STALLED_AFTER_MS = 60 * 60_000;

/** The refund gave the money back (through the provider, or recorded as paid back outside it). */
export const moneyReturned = (status: RefundOutcome['status']) => status === 'SUCCEEDED' || status === 'REFUNDED_MANUALLY';
/** The refund has ended: it will not move money any more. */
export const refundEnded = (status: RefundOutcome['status']) => moneyReturned(status) || status === 'REJECTED' || status === 'ABANDONED';

export interface RefundOutcome {
  workflowId: string;
  /** The refund's final status, or its live one if the wait ended first (RUNNING when unknown). */
  status: RefundStatus | 'RUNNING';
  /** Its result once finished; the last state read while it still runs (may be null). */
  state: RefundState | null;
  /** False when the refund was already started before this call (reported, not started). */
  startedHere: boolean;
}

export interface RefundOptions {
  /** Give up waiting after this long (workflow time) and report the refund as still running. Omit: wait until it ends. */
  waitMs?: number;
  /** Called once the refund workflow exists (started here or found), with its id. */
  onStarted?: (workflowId: string) => void;
  /**
   * Where a stalled wait for a refund started elsewhere shows (NeedsAttention and the details of the
   * caller) and hears the operator's `retryStep`, which makes it look at once. Omit: nothing shows.
   */
  stalls?: ProviderStalls;
}

const lookups = proxyActivities<RefundChildActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  summary: 'Look up the refund started earlier',
});

const FIRST_LOOKUP_MS = 1_000;
/** The interval's cap before BOUNDED_REFUND_WAIT_PATCH; past it, intervals double up to STALLED_CHECK_INTERVAL_MS. */
const MAX_LOOKUP_INTERVAL_MS = 30_000;

/**
 * Starts (or finds) the refund for `input.requestId` and waits for its outcome. A refund found under
 * that id that is not this request's fails with an ActivityFailure (`foreign_refund`).
 */
export async function refundThroughWorkflow(input: RefundInput, options: RefundOptions = {}): Promise<RefundOutcome> {
  const workflowId = refundWorkflowId(input.requestId);
  const deadline = options.waitMs === undefined ? undefined : Date.now() + options.waitMs;
  const remaining = () => (deadline === undefined ? undefined : Math.max(deadline - Date.now(), 0));
  const origin = inheritedOrigin();
  for (let round = 0; ; round++) {
    let started;
    try {
      // by type name: tests of a single workflow register a stand-in under it
      started = await startChild<typeof refund>(WORKFLOW_TYPES.refund, {
        workflowId,
        args: [input],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        // Running or completed: report it. Failed or terminated: it never answered, start it again.
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        staticSummary: refundSummary(input, origin.currency),
        typedSearchAttributes: refundStartAttributes(input, origin),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    options.onStarted?.(workflowId);
    if (started) {
      let answer: { state: RefundState } | { failure: unknown } | undefined;
      started.result().then((state) => (answer = { state }), (failure: unknown) => (answer = { failure }));
      const left = remaining();
      if (left === undefined) await condition(() => answer !== undefined);
      else if (left > 0) await condition(() => answer !== undefined, left, { summary: `Stop waiting for refund ${workflowId}` });
      if (answer === undefined) return { workflowId, status: 'RUNNING', state: null, startedHere: true };
      if ('state' in answer) return { workflowId, status: answer.state.status, state: answer.state, startedHere: true };
      if (!(answer.failure instanceof ChildWorkflowFailure)) throw answer.failure;
      log.error('Refund workflow ended without an answer; starting it again', { workflowId, error: answer.failure.cause?.message });
    } else {
      const found = await waitForExisting(workflowId, input, remaining, options.stalls);
      if (found.execution === 'COMPLETED' && found.state) return { workflowId, status: found.state.status, state: found.state, startedHere: false };
      if (found.execution === 'RUNNING') return { workflowId, status: found.state?.status ?? 'RUNNING', state: found.state, startedHere: false };
      log.error('Refund workflow found closed without an answer; starting it again', { workflowId, execution: found.execution });
    }
    // A refund that fails at once again is a bug: keep it visible, don't spin.
    const waitMinutes = Math.min(2 ** round, 60);
    await sleep(waitMinutes * 60_000, { summary: `Start refund ${workflowId} again in ${waitMinutes} min` });
  }
}

/**
 * Reads a refund some other execution started until it closes, or the wait is over (then RUNNING).
 * One that is not `request`'s fails the read (ActivityFailure `foreign_refund`), every time it is read.
 */
async function waitForExisting(
  workflowId: string,
  request: RefundInput,
  remaining: () => number | undefined,
  stalls: ProviderStalls | undefined,
): Promise<RefundWorkflowOutcome> {
  const expected = { orderId: request.orderId, amount: request.amount, requestedBy: request.requestedBy };
  const startedAt = Date.now();
  let bounded = false;
  let stalled = false;
  let intervalMs = FIRST_LOOKUP_MS;
  try {
    for (;;) {
      const found = await lookups.readRefundWorkflow({ workflowId, expected });
      if (found.execution !== 'RUNNING') return found;
      const left = remaining();
      if (left === 0) return found;
      // Decided where the old checks stopped growing, so a run recorded before replays them unchanged.
      if (!bounded && intervalMs >= MAX_LOOKUP_INTERVAL_MS && patched(BOUNDED_REFUND_WAIT_PATCH)) bounded = true;
      if (bounded && !stalled && Date.now() - startedAt >= EXISTING_REFUND_STALLED_AFTER_MS) {
        stalled = true;
        const status = found.state?.status ?? 'RUNNING';
        log.warn('A refund started elsewhere has not ended in time; looking at most hourly now', { workflowId, status });
        stalls?.report({ what: `refund ${workflowId}`, waitsFor: `another run (still ${status})`, since: new Date(startedAt).toISOString() });
      }
      const waitMs = left === undefined ? intervalMs : Math.min(intervalMs, left);
      const summary = `Look at refund ${workflowId} again`;
      if (!bounded) {
        await sleep(waitMs, { summary });
        intervalMs = Math.min(intervalMs * 2, MAX_LOOKUP_INTERVAL_MS);
        continue;
      }
      // Only a stalled wait listens for the operator's `retryStep`; a look it prompted does not slow the next.
      const retriesBefore = stalls?.retryRequests() ?? 0;
      const retried = await condition(() => stalled && stalls !== undefined && stalls.retryRequests() !== retriesBefore, waitMs, { summary });
      if (!retried) intervalMs = Math.min(intervalMs * 2, STALLED_CHECK_INTERVAL_MS);
    }
  } finally {
    if (stalled) stalls?.report(null);
  }
}

/** The region, customer and currency of the run that gives the money back (a checkout knows them; others may not). */
function inheritedOrigin(): RefundOrigin {
  const attributes = workflowInfo().typedSearchAttributes;
  return { region: attributes.get(RegionKey), customerId: attributes.get(CustomerIdKey), currency: attributes.get(CurrencyKey) };
}
