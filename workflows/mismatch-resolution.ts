// A mismatch the rules could not settle waits here for an operator. The `resolve` Update (or
// signal) names the action; the workflow carries it out and closes the record. An action that
// cannot be carried out (the checkout is gone, the refund was refused or still waits for a
// decision in its own Refund workflow) leaves the mismatch OPEN with the reason in its details,
// and the workflow waits for the next decision. One decision at a time: another while one is
// being carried out is refused (`action_pending`), one after the mismatch closed too.
//
// Carrying out a decision can wait long: for the provider to decide a refund, for the nudged order
// to be paid. Those waits check at doubling intervals up to an hour; past an hour they have stalled
// and show it (NeedsAttention, the reason in the details) until they end; and a run whose history
// has grown long continues as new, carrying the decision and the wait in its input, so no mismatch
// outgrows its history however long the provider takes.
import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ProviderRefundView, ReconciliationActivities } from '../activities/reconciliation.ts';
import { checkoutWorkflowIdForOrder } from '../shared/checkout.ts';
import { paymentEventSignal } from '../shared/payments.ts';
import type { Refusal } from '../shared/operator-actions.ts';
import { reconciliationRefundRequestId, refundIdFor } from '../shared/refunds.ts';
import {
  mismatchStateQuery,
  resolveMismatchSignal,
  resolveMismatchUpdate,
  RESOLUTION_ACTIONS,
  type MismatchKind,
  type MismatchState,
  type MismatchStatus,
  type ResolutionAction,
  type ResolveRequest,
} from '../shared/reconciliation.ts';
import { FlowStatusKey, NeedsAttentionKey } from '../shared/search-attributes.ts';
import { operatorActions } from './operator-actions.ts';
import { STALLED_CHECK_INTERVAL_MS } from './provider-wait.ts';
import { moneyReturned, refundEnded, refundThroughWorkflow } from './refund-child.ts';
import { OPERATOR_VISIBILITY_PATCH, type ProviderStalls } from './refused-steps.ts';

export const DEFAULT_COMPLETION_WAIT_MS = 60_000;
/** The first check for the order being paid; before BOUNDED_MISMATCH_WAITS_PATCH every check was this far apart. */
const COMPLETION_CHECK_MS = 1_000;
export const DEFAULT_REFUND_WAIT_MS = 5 * 60_000;
const PROVIDER_REFUND_FIRST_CHECK_MS = 1_000;
/** The cap on the provider wait's interval before BOUNDED_MISMATCH_WAITS_PATCH. */
const PROVIDER_REFUND_MAX_CHECK_MS = 30_000;

/**
 * Guards the bounded waits (intervals doubling up to an hour, the stall shown, continuing as new):
 * a run recorded before replays its checks without it and turns bounded at its next new check.
 */
export const BOUNDED_MISMATCH_WAITS_PATCH = 'bounded-mismatch-waits';
/** A wait still going after this has stalled: nothing moves without someone looking. */
export const WAIT_STALLED_AFTER_MS = 60 * 60_000;
/**
 * A waiting run whose history reaches this many events continues as new (or sooner, when the server
 * suggests it). A check costs about 11 events, so at hourly checks that is every 3½ days: replays
 * stay short and the run stays far below Temporal's 10,240-event warning.
 */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 1_000;

/** Reads and our own DB writes: retried a while; a run that still fails is retried by the next one. */
const RECORDS: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
};
/** Each call names itself in the Web UI through the activity summary. */
export const records = (summary: string) => proxyActivities<ReconciliationActivities>({ ...RECORDS, summary });

export interface MismatchResolutionInput {
  mismatchId: string;
  kind: MismatchKind;
  reference: string;
  pspPaymentId: string | null;
  summary: string;
  /** How long `complete-order` waits for the nudged checkout to mark the order PAID. */
  completionWaitMs?: number;
  /** How long `refund` waits for the Refund workflow; one still running is left to decide in that workflow. */
  refundWaitMs?: number;
  /** Set only by the run that continued as new: the decision it was carrying out and where its wait stood. */
  resume?: MismatchResumption;
}

/** The decision a run was carrying out when it continued as new, its number, and the wait it was in. */
export interface MismatchResumption {
  request: ResolveRequest;
  decisions: number;
  wait: PendingWait;
}

/** How far a bounded wait has come: when it began (workflow time, ms) and the interval before its next check. */
export interface WaitProgress {
  since: number;
  intervalMs: number;
}

/** A wait as carried into the next run. */
export type PendingWait =
  | (WaitProgress & { for: 'provider-refund'; refundId: string })
  | (WaitProgress & { for: 'order-paid'; checkoutId: string; until: number; orderStatus: string | null });

/** What a bounded wait reports to the workflow carrying out the decision (reconciliation's own actions pass none). */
export interface WaitReports {
  /** The wait has stalled (why, for the details), or it is over (null). */
  stalled(why: string | null): void;
  /** Between two checks: continues the run as new, carrying `wait`, once its history is long (then never returns). */
  checkpoint(wait: PendingWait): Promise<void>;
}

export interface MismatchResolutionResult {
  mismatchId: string;
  status: MismatchStatus;
  resolution: ResolveRequest | null;
}

export async function mismatchResolution(input: MismatchResolutionInput): Promise<MismatchResolutionResult> {
  let status: MismatchStatus = 'OPEN';
  let resolution: ResolveRequest | null = null;
  // Decisions taken up in turn; more than one waits here only in runs recorded before one at a time.
  const requests: ResolveRequest[] = [];
  let carrying: ResolveRequest | null = null;
  const state = (): MismatchState => ({ mismatchId: input.mismatchId, status, resolution, pending: carrying ?? requests[0] ?? null });
  setHandler(mismatchStateQuery, state);
  let details = `**OPEN** · ${input.kind} on ${input.reference} · waiting for an operator's resolve (complete-order, refund or accept)`;
  // A refused signal re-renders the details only: no command where a run recorded before added none.
  const actions = operatorActions(state, () => setCurrentDetails(`${details}${actions.ignored()}`));
  actions.accept({
    signal: resolveMismatchSignal,
    update: resolveMismatchUpdate,
    check: (): Refusal | null => {
      if (status !== 'OPEN') {
        return { code: 'already_resolved', message: `the mismatch is ${status}${resolution ? `: ${resolution.action} by ${resolution.by}` : ''}` };
      }
      const pending = carrying ?? requests[0];
      if (pending) return { code: 'action_pending', message: `${pending.action} by ${pending.by} is being carried out` };
      return null;
    },
    apply: (request) => {
      requests.push(request);
      // Taken up in the same workflow task: the update answers with the decision being carried out.
      return () => !requests.includes(request);
    },
    malformed: ({ action }) => (RESOLUTION_ACTIONS.includes(action) ? null : `unknown action "${String(action)}"; one of ${RESOLUTION_ACTIONS.join(', ')}`),
  });
  actions.listen();
  /**
   * Shows where the mismatch stands. It starts OPEN and waiting (set by whoever started it);
   * runs recorded before these upserts existed replay without them.
   */
  const show = (waitingForOperator: boolean, now: string) => {
    if (patched(OPERATOR_VISIBILITY_PATCH)) {
      upsertSearchAttributes([
        { key: FlowStatusKey, value: status },
        { key: NeedsAttentionKey, value: waitingForOperator },
      ]);
    }
    details = `**${status}** · ${input.kind} on ${input.reference} · ${now}`;
    actions.forget();
    setCurrentDetails(details);
  };
  setCurrentDetails(details);

  const carryingOut = (request: ResolveRequest) => `carrying out ${request.action} decided by ${request.by}`;
  /** The stall shows beside the decision; a long history continues as new in the middle of it. */
  const reportsFor = (request: ResolveRequest, decisions: number): WaitReports => ({
    stalled: (why) => show(why !== null, why === null ? carryingOut(request) : `${carryingOut(request)} · ${why} — needs an operator`),
    async checkpoint(wait) {
      const info = workflowInfo();
      if (!info.continueAsNewSuggested && info.historyLength < CONTINUE_AS_NEW_AFTER_EVENTS) return;
      // No decision can be in flight (another is refused while this one is carried out); wait for handlers anyway.
      await condition(allHandlersFinished);
      log.info('Continuing as new in the middle of a wait', { mismatchId: input.mismatchId, historyLength: info.historyLength, wait: wait.for });
      const next: MismatchResolutionInput = { ...input, resume: { request, decisions, wait } };
      await makeContinueAsNewFunc<typeof mismatchResolution>({ typedSearchAttributes: workflowInfo().typedSearchAttributes })(next);
    },
  });

  let resume = input.resume;
  for (let decisions = resume?.decisions ?? 1; status === 'OPEN'; decisions++) {
    let request: ResolveRequest;
    if (resume === undefined) {
      await condition(() => requests.length > 0);
      request = requests.shift()!;
    } else {
      request = resume.request;
    }
    carrying = request;
    show(false, carryingOut(request));
    const reports = reportsFor(request, decisions);
    const failure =
      resume === undefined
        ? await carryOut(request.action, input, { by: request.by, note: request.note, attempt: `${request.by}-${decisions}` }, reports)
        : await resumeWait(resume.wait, input, reports);
    resume = undefined;
    if (failure === null) {
      await records('Mark the mismatch resolved').markMismatch({ id: input.mismatchId, status: 'RESOLVED', ...request });
      status = 'RESOLVED';
      resolution = request;
      carrying = null;
      show(false, `${request.action} by ${request.by}`);
    } else {
      log.warn('Resolution could not be carried out; waiting for another decision', { mismatchId: input.mismatchId, failure });
      show(true, `${request.action} by ${request.by} failed: ${failure} — waiting for another decision`);
      await records('Note the failed resolution').noteMismatch({
        id: input.mismatchId,
        details: { lastAttempt: `${request.action} by ${request.by} failed: ${failure}` },
      });
      carrying = null;
    }
  }
  return { mismatchId: input.mismatchId, status, resolution };
}

/** Who decided an action and why; `attempt` tells a decision asked again from a retry of the same one. */
export interface Decision {
  by: string;
  note: string;
  attempt: string;
}

/**
 * Carries out one action; null when done, else why it could not be. Its waits report to `reports`
 * (stalls, continuing as new); without them they are still bounded, only unseen.
 */
export async function carryOut(action: ResolutionAction, mismatch: MismatchResolutionInput, decision: Decision, reports?: WaitReports): Promise<string | null> {
  switch (action) {
    case 'accept':
      return null;
    case 'refund':
      return refundHeld(mismatch, decision, reports);
    case 'complete-order':
      return completeOrder(mismatch, reports);
    default:
      return `unknown action "${String(action)}"`;
  }
}

/** Takes a wait up again where the run before left it, and ends the decision as that wait would have. */
async function resumeWait(wait: PendingWait, mismatch: MismatchResolutionInput, reports: WaitReports): Promise<string | null> {
  if (wait.for === 'order-paid') return awaitOrderPaid(mismatch, wait, true, reports);
  try {
    return await awaitProviderRefund({ refundId: wait.refundId, status: 'PENDING', amountMinor: 0, failureReason: null }, wait, true, reports);
  } catch (err) {
    if (err instanceof ActivityFailure) return `refund failed: ${err.cause?.message ?? err.message}`;
    throw err;
  }
}

/**
 * Paces a bounded wait: shows the stall once it is due, lets the run continue as new, then sleeps
 * (never past `until`) and doubles the interval up to an hour.
 */
function pacer(wait: WaitProgress, reports: WaitReports | undefined, stall: () => string) {
  let stalled = false;
  return {
    async pause(pending: () => PendingWait, summary: string, until?: number) {
      if (!stalled && Date.now() - wait.since >= WAIT_STALLED_AFTER_MS) {
        stalled = true;
        log.warn('A wait has stalled; checking at most hourly now', { stall: stall() });
        reports?.stalled(stall());
      }
      await reports?.checkpoint(pending());
      const ms = until === undefined ? wait.intervalMs : Math.min(wait.intervalMs, until - Date.now());
      if (ms > 0) await sleep(ms, { summary });
      wait.intervalMs = Math.min(wait.intervalMs * 2, STALLED_CHECK_INTERVAL_MS);
    },
    /** Not on the way out of a run that continues as new: its next run shows the stall again. */
    end() {
      if (stalled) reports?.stalled(null);
    },
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Nudges the checkout to read the provider's truth, then waits for the order to be PAID. */
export async function completeOrder(mismatch: MismatchResolutionInput, reports?: WaitReports): Promise<string | null> {
  const { mismatchId, reference, pspPaymentId } = mismatch;
  const checkoutId = checkoutWorkflowIdForOrder(reference);
  if (!checkoutId) return `no checkout owns ${reference}`;
  try {
    await getExternalWorkflowHandle(checkoutId).signal(paymentEventSignal, {
      eventId: `reconciliation:${mismatchId}`,
      type: 'payment.captured',
      pspPaymentId: pspPaymentId ?? '',
      orderId: reference,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The only refusal of a signal: no such running workflow.
    return `checkout ${checkoutId} is not running, so it cannot complete the order (${(err as Error).message})`;
  }
  const since = Date.now();
  const wait: PendingWait = {
    for: 'order-paid',
    checkoutId,
    until: since + (mismatch.completionWaitMs ?? DEFAULT_COMPLETION_WAIT_MS),
    orderStatus: null,
    since,
    intervalMs: COMPLETION_CHECK_MS,
  };
  return awaitOrderPaid(mismatch, wait, false, reports);
}

/** Reads the order until it is PAID, CANCELLED or gone, or `wait.until` has passed. */
async function awaitOrderPaid(
  mismatch: MismatchResolutionInput,
  wait: Extract<PendingWait, { for: 'order-paid' }>,
  bounded: boolean,
  reports: WaitReports | undefined,
): Promise<string | null> {
  const { reference } = mismatch;
  const { checkoutId } = wait;
  const summary = `Wait for order ${reference} to be paid`;
  const pace = pacer(wait, reports, () =>
    `order ${reference} is still ${wait.orderStatus ?? 'unread'} since checkout ${checkoutId} was nudged at ${iso(wait.since)}; checking at most hourly until ${iso(wait.until)}`,
  );
  // Runs recorded before: a fixed number of checks a second apart.
  const checks = Math.ceil((mismatch.completionWaitMs ?? DEFAULT_COMPLETION_WAIT_MS) / COMPLETION_CHECK_MS);
  for (let i = 0; ; i++) {
    if (!bounded && patched(BOUNDED_MISMATCH_WAITS_PATCH)) bounded = true;
    if (bounded) {
      await pace.pause(() => ({ ...wait }), summary, wait.until);
    } else {
      if (i >= checks) break;
      await sleep(COMPLETION_CHECK_MS, { summary });
    }
    try {
      wait.orderStatus = await records('Read the order status').getOrderStatus({ orderId: reference });
    } catch (err) {
      if (err instanceof ActivityFailure) return `checkout ${checkoutId} was nudged but the order could not be read back: ${err.cause?.message ?? err.message}`;
      throw err;
    }
    if (wait.orderStatus === 'PAID') {
      pace.end();
      return null;
    }
    if (wait.orderStatus === 'CANCELLED' || wait.orderStatus === null) break;
    if (bounded && Date.now() >= wait.until) break;
  }
  pace.end();
  return `checkout ${checkoutId} was nudged but order ${reference} is still ${wait.orderStatus ?? 'missing'}`;
}

/**
 * Gives back what the provider still holds of the payment: our order's payment through a Refund
 * workflow (a child under an id derived from the mismatch, so asking again reports that refund
 * instead of refunding twice), money no payment of ours stands for straight at the provider.
 */
export async function refundHeld(mismatch: MismatchResolutionInput, decision: Decision, reports?: WaitReports): Promise<string | null> {
  const { reference, pspPaymentId } = mismatch;
  if (!pspPaymentId) return 'no provider payment to refund';
  try {
    const target = await records('Find what the provider still holds').readRefundTarget({ reference, pspPaymentId });
    if (target.heldMinor === 0) return null;
    return target.ours
      ? await refundOurPayment(mismatch, target.heldMinor, decision, reports)
      : await refundAtProvider(mismatch, pspPaymentId, target.heldMinor, decision, reports);
  } catch (err) {
    if (err instanceof ActivityFailure) return `refund failed: ${err.cause?.message ?? err.message}`;
    throw err;
  }
}

async function refundOurPayment(mismatch: MismatchResolutionInput, amountMinor: number, { by, note }: Decision, reports?: WaitReports): Promise<string | null> {
  // Waiting on a refund started elsewhere is bounded by `refundWaitMs`; one set past an hour stalls visibly.
  const stalls: ProviderStalls | undefined = reports && {
    report: (stall) => reports.stalled(stall && `${stall.what} since ${stall.since}; looking at most hourly`),
    retryRequests: () => 0,
  };
  const outcome = await refundThroughWorkflow(
    {
      requestId: reconciliationRefundRequestId(mismatch.mismatchId),
      orderId: mismatch.reference,
      amount: amountMinor,
      reason: `reconciliation: ${mismatch.summary}`,
      restock: [],
      requestedBy: 'reconciliation',
      preApproved: { by, reason: note },
    },
    { waitMs: mismatch.refundWaitMs ?? DEFAULT_REFUND_WAIT_MS, ...(stalls && { stalls }) },
  );
  if (moneyReturned(outcome.status)) return null;
  const refund = `refund ${outcome.workflowId}${outcome.startedHere ? '' : ' (started earlier)'}`;
  const why = outcome.state?.failure ? `: ${outcome.state.failure}` : '';
  if (!refundEnded(outcome.status)) return `${refund} is still ${outcome.status}${why}; decide it there`;
  return `${refund} ended ${outcome.status}${why}`;
}

/** No payment of ours to refund through: ask the provider directly and wait for its asynchronous decision. */
async function refundAtProvider(
  mismatch: MismatchResolutionInput,
  pspPaymentId: string,
  amountMinor: number,
  decision: Decision,
  reports: WaitReports | undefined,
): Promise<string | null> {
  const requestId = reconciliationRefundRequestId(mismatch.mismatchId);
  const refund = await records('Refund at the provider').startProviderRefund({
    // a refused refund asked for again is a new refund; the same decision retried is the same one
    idempotencyKey: `reconciliation:${mismatch.mismatchId}:refund:${decision.attempt}`,
    pspPaymentId,
    amountMinor,
    reference: refundIdFor(requestId),
  });
  return awaitProviderRefund(refund, { since: Date.now(), intervalMs: PROVIDER_REFUND_FIRST_CHECK_MS }, false, reports);
}

/** Asks the provider about `refund` until it has decided; null when it gave the money back. */
async function awaitProviderRefund(refund: ProviderRefundView, wait: WaitProgress, bounded: boolean, reports: WaitReports | undefined): Promise<string | null> {
  const { refundId } = refund;
  const summary = `Wait for the provider to decide refund ${refundId}`;
  const pace = pacer(wait, reports, () => `the provider has not decided refund ${refundId} since ${iso(wait.since)}; asking at most hourly`);
  while (refund.status === 'PENDING') {
    // Decided where the old checks stopped growing, so a run recorded before replays them unchanged.
    if (!bounded && wait.intervalMs >= PROVIDER_REFUND_MAX_CHECK_MS && patched(BOUNDED_MISMATCH_WAITS_PATCH)) bounded = true;
    if (bounded) {
      await pace.pause(() => ({ for: 'provider-refund', refundId, since: wait.since, intervalMs: wait.intervalMs }), summary);
    } else {
      await sleep(wait.intervalMs, { summary });
      wait.intervalMs = Math.min(wait.intervalMs * 2, PROVIDER_REFUND_MAX_CHECK_MS);
    }
    refund = await records('Ask the provider about the refund').readProviderRefund({ refundId });
  }
  pace.end();
  return refund.status === 'SUCCEEDED' ? null : `the provider refused refund ${refundId}: ${refund.failureReason ?? 'no reason given'}`;
}

// Kept here too: the request id of a mismatch's refund now lives beside the other reserved ids.
export { reconciliationRefundRequestId };
