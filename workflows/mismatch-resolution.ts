// A mismatch the rules could not settle waits here for an operator. The `resolve` Update (or
// signal) names the action; the workflow carries it out and closes the record. An action that
// cannot be carried out (the checkout is gone, the refund was refused or still waits for a
// decision in its own Refund workflow) leaves the mismatch OPEN with the reason in its details,
// and the workflow waits for the next decision. One decision at a time: another while one is
// being carried out is refused (`action_pending`), one after the mismatch closed too.
import {
  ActivityFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ReconciliationActivities } from '../activities/reconciliation.ts';
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
import { moneyReturned, refundEnded, refundThroughWorkflow } from './refund-child.ts';
import { OPERATOR_VISIBILITY_PATCH } from './refused-steps.ts';

export const DEFAULT_COMPLETION_WAIT_MS = 60_000;
const COMPLETION_CHECK_MS = 1_000;
export const DEFAULT_REFUND_WAIT_MS = 5 * 60_000;
const PROVIDER_REFUND_FIRST_CHECK_MS = 1_000;
const PROVIDER_REFUND_MAX_CHECK_MS = 30_000;

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

  for (let decisions = 1; status === 'OPEN'; decisions++) {
    await condition(() => requests.length > 0);
    const request = requests.shift()!;
    carrying = request;
    show(false, `carrying out ${request.action} decided by ${request.by}`);
    const failure = await carryOut(request.action, input, { by: request.by, note: request.note, attempt: `${request.by}-${decisions}` });
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

/** Carries out one action; null when done, else why it could not be. */
export async function carryOut(action: ResolutionAction, mismatch: MismatchResolutionInput, decision: Decision): Promise<string | null> {
  switch (action) {
    case 'accept':
      return null;
    case 'refund':
      return refundHeld(mismatch, decision);
    case 'complete-order':
      return completeOrder(mismatch);
    default:
      return `unknown action "${String(action)}"`;
  }
}

/** Nudges the checkout to read the provider's truth, then waits for the order to be PAID. */
export async function completeOrder(mismatch: MismatchResolutionInput): Promise<string | null> {
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
  let orderStatus: string | null = null;
  const checks = Math.ceil((mismatch.completionWaitMs ?? DEFAULT_COMPLETION_WAIT_MS) / COMPLETION_CHECK_MS);
  for (let i = 0; i < checks; i++) {
    await sleep(COMPLETION_CHECK_MS, { summary: `Wait for order ${reference} to be paid` });
    try {
      orderStatus = await records('Read the order status').getOrderStatus({ orderId: reference });
    } catch (err) {
      if (err instanceof ActivityFailure) return `checkout ${checkoutId} was nudged but the order could not be read back: ${err.cause?.message ?? err.message}`;
      throw err;
    }
    if (orderStatus === 'PAID') return null;
    if (orderStatus === 'CANCELLED' || orderStatus === null) break;
  }
  return `checkout ${checkoutId} was nudged but order ${reference} is still ${orderStatus ?? 'missing'}`;
}

/**
 * Gives back what the provider still holds of the payment: our order's payment through a Refund
 * workflow (a child under an id derived from the mismatch, so asking again reports that refund
 * instead of refunding twice), money no payment of ours stands for straight at the provider.
 */
export async function refundHeld(mismatch: MismatchResolutionInput, decision: Decision): Promise<string | null> {
  const { reference, pspPaymentId } = mismatch;
  if (!pspPaymentId) return 'no provider payment to refund';
  try {
    const target = await records('Find what the provider still holds').readRefundTarget({ reference, pspPaymentId });
    if (target.heldMinor === 0) return null;
    return target.ours
      ? await refundOurPayment(mismatch, target.heldMinor, decision)
      : await refundAtProvider(mismatch, pspPaymentId, target.heldMinor, decision);
  } catch (err) {
    if (err instanceof ActivityFailure) return `refund failed: ${err.cause?.message ?? err.message}`;
    throw err;
  }
}

async function refundOurPayment(mismatch: MismatchResolutionInput, amountMinor: number, { by, note }: Decision): Promise<string | null> {
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
    { waitMs: mismatch.refundWaitMs ?? DEFAULT_REFUND_WAIT_MS },
  );
  if (moneyReturned(outcome.status)) return null;
  const refund = `refund ${outcome.workflowId}${outcome.startedHere ? '' : ' (started earlier)'}`;
  const why = outcome.state?.failure ? `: ${outcome.state.failure}` : '';
  if (!refundEnded(outcome.status)) return `${refund} is still ${outcome.status}${why}; decide it there`;
  return `${refund} ended ${outcome.status}${why}`;
}

/** No payment of ours to refund through: ask the provider directly and wait for its asynchronous decision. */
async function refundAtProvider(mismatch: MismatchResolutionInput, pspPaymentId: string, amountMinor: number, decision: Decision): Promise<string | null> {
  const requestId = reconciliationRefundRequestId(mismatch.mismatchId);
  let refund = await records('Refund at the provider').startProviderRefund({
    // a refused refund asked for again is a new refund; the same decision retried is the same one
    idempotencyKey: `reconciliation:${mismatch.mismatchId}:refund:${decision.attempt}`,
    pspPaymentId,
    amountMinor,
    reference: refundIdFor(requestId),
  });
  for (let intervalMs = PROVIDER_REFUND_FIRST_CHECK_MS; refund.status === 'PENDING'; intervalMs = Math.min(intervalMs * 2, PROVIDER_REFUND_MAX_CHECK_MS)) {
    await sleep(intervalMs, { summary: `Wait for the provider to decide refund ${refund.refundId}` });
    refund = await records('Ask the provider about the refund').readProviderRefund({ refundId: refund.refundId });
  }
  return refund.status === 'SUCCEEDED' ? null : `the provider refused refund ${refund.refundId}: ${refund.failureReason ?? 'no reason given'}`;
}

// Kept here too: the request id of a mismatch's refund now lives beside the other reserved ids.
export { reconciliationRefundRequestId };
