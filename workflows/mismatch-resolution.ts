// A mismatch the rules could not settle waits here for an operator. The `resolve` signal names
// the action; the workflow carries it out and closes the record. An action that cannot be
// carried out (the checkout is gone, the provider refuses the refund) leaves the mismatch
// OPEN with the reason in its details, and the workflow waits for the next decision.
import {
  ActivityFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ReconciliationActivities } from '../activities/reconciliation.ts';
import { checkoutWorkflowIdForOrder } from '../shared/checkout.ts';
import { paymentEventSignal } from '../shared/payments.ts';
import {
  mismatchStateQuery,
  resolveMismatchSignal,
  type MismatchKind,
  type MismatchStatus,
  type ResolutionAction,
  type ResolveRequest,
} from '../shared/reconciliation.ts';

export const DEFAULT_COMPLETION_WAIT_MS = 60_000;
const COMPLETION_CHECK_MS = 1_000;

/** Reads and our own DB writes: retried a while; a run that still fails is retried by the next one. */
const RECORDS: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
};
export const records = proxyActivities<ReconciliationActivities>(RECORDS);

export interface MismatchResolutionInput {
  mismatchId: string;
  kind: MismatchKind;
  reference: string;
  pspPaymentId: string | null;
  summary: string;
  /** How long `complete-order` waits for the nudged checkout to mark the order PAID. */
  completionWaitMs?: number;
}

export interface MismatchResolutionResult {
  mismatchId: string;
  status: MismatchStatus;
  resolution: ResolveRequest | null;
}

export async function mismatchResolution(input: MismatchResolutionInput): Promise<MismatchResolutionResult> {
  let status: MismatchStatus = 'OPEN';
  let resolution: ResolveRequest | null = null;
  const requests: ResolveRequest[] = [];
  setHandler(mismatchStateQuery, () => ({ mismatchId: input.mismatchId, status, resolution }));
  setHandler(resolveMismatchSignal, (request) => {
    if (status === 'OPEN') requests.push(request);
    else log.info('Mismatch already resolved; decision ignored', { mismatchId: input.mismatchId, by: request.by });
  });

  while (status === 'OPEN') {
    await condition(() => requests.length > 0);
    const request = requests.shift()!;
    const failure = await carryOut(request.action, input);
    if (failure === null) {
      await records.markMismatch({ id: input.mismatchId, status: 'RESOLVED', ...request });
      status = 'RESOLVED';
      resolution = request;
    } else {
      log.warn('Resolution could not be carried out; waiting for another decision', { mismatchId: input.mismatchId, failure });
      await records.noteMismatch({
        id: input.mismatchId,
        details: { lastAttempt: `${request.action} by ${request.by} failed: ${failure}` },
      });
    }
  }
  return { mismatchId: input.mismatchId, status, resolution };
}

/** Carries out one action; null when done, else why it could not be. */
export async function carryOut(action: ResolutionAction, mismatch: MismatchResolutionInput): Promise<string | null> {
  switch (action) {
    case 'accept':
      return null;
    case 'refund':
      return refundHeld(mismatch);
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
    await sleep(COMPLETION_CHECK_MS);
    try {
      orderStatus = await records.getOrderStatus({ orderId: reference });
    } catch (err) {
      if (err instanceof ActivityFailure) return `checkout ${checkoutId} was nudged but the order could not be read back: ${err.cause?.message ?? err.message}`;
      throw err;
    }
    if (orderStatus === 'PAID') return null;
    if (orderStatus === 'CANCELLED' || orderStatus === null) break;
  }
  return `checkout ${checkoutId} was nudged but order ${reference} is still ${orderStatus ?? 'missing'}`;
}

/** Refunds what the provider still holds of the payment; verified by reading the provider back. */
export async function refundHeld(mismatch: MismatchResolutionInput): Promise<string | null> {
  const { mismatchId, reference, pspPaymentId } = mismatch;
  if (!pspPaymentId) return 'no provider payment to refund';
  try {
    const { heldMinor } = await records.refundHeld({ mismatchId, reference, pspPaymentId });
    return heldMinor === 0 ? null : `the provider still holds ${heldMinor} after the refund`;
  } catch (err) {
    if (err instanceof ActivityFailure) return `refund failed: ${err.cause?.message ?? err.message}`;
    throw err;
  }
}
