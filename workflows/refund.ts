// A refund, from request to money back and its effects. It checks the request against what was
// captured, waits for an operator's approval when the amount is large (escalating, then
// expiring), asks the provider with an idempotency key and waits for its asynchronous decision.
// Once the money is back the effects follow — the order's refund, the restock, the loyalty
// points, the coupon — and each runs until done. A provider that refuses the refund for good
// does not end the workflow: it waits for an operator to retry, record a manual refund, or
// abandon it with a reason.
//
// Nothing is undone here: before the provider is asked, nothing has changed; after it agreed,
// the money is back and the effects only follow it. The cap on the amount is the payments
// service's (it holds under concurrent refunds); this workflow only reports its verdict.
import {
  condition,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { OrderForRefund, ProviderRefund, RefundActivities, RefundRefusal } from '../activities/refunds.ts';
import { formatMoney } from '../shared/money.ts';
import {
  abandonRefundSignal,
  abandonRefundUpdate,
  approveRefundSignal,
  approveRefundUpdate,
  refundManuallySignal,
  refundManuallyUpdate,
  refundStateQuery,
  rejectRefundSignal,
  rejectRefundUpdate,
  retryRefundSignal,
  retryRefundUpdate,
  type OperatorDecision,
  type RefundInput,
  type RefundPolicy,
  type RefundState,
  type RefundStatus,
} from '../shared/refunds.ts';
import { AmountMinorKey, CurrencyKey, CustomerIdKey, FlowStatusKey, NeedsAttentionKey, OrderIdKey } from '../shared/search-attributes.ts';
import type { Refusal } from '../shared/operator-actions.ts';
import { operatorActions } from './operator-actions.ts';
import { refundOutcomes } from './refund-outcome.ts';
import { describeRefusals, describeStall, refusedSteps, untilStuck } from './refused-steps.ts';

export const DEFAULT_REFUND_POLICY: RefundPolicy = {
  approvalThresholdMinor: 10_000,
  escalateAfterMs: 24 * 60 * 60_000,
  expireAfterMs: 72 * 60 * 60_000,
  returnCouponOnFullRefund: true,
};

/** Plain service calls (the HTTP client gives up at 8 s); payments calls may wait on the PSP (15 s). */
const SERVICE_CALL = '10 seconds';
const PSP_CALL = '20 seconds';

/**
 * Every call retries until done: a refund the system owes (a cancelled checkout's capture) must
 * not be dropped because a service was down for a while, and after the provider was asked, giving
 * up would lose money or stock. Only the provider wait's own check (`syncProviderRefund`) has no
 * attempt limit: that wait shows its stall itself (refund-outcome.ts).
 */
const UNTIL_DONE: ActivityOptions = {
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

const untilDone = (summary: string, startToCloseTimeout = SERVICE_CALL) =>
  proxyActivities<RefundActivities>({ ...UNTIL_DONE, startToCloseTimeout, summary });
/**
 * Every other call is bounded (`untilStuck`, about 4 minutes of attempts) and runs under `persist`
 * (the effects) or `outlast` (the reads and the provider requests, whose refusals come back as
 * values), which then retry on a slow timer: a service down for hours shows as NeedsAttention with
 * its last error, and the operator's retryStep tries again at once.
 */
const bounded = (summary: string, startToCloseTimeout = SERVICE_CALL) =>
  proxyActivities<RefundActivities>(untilStuck({ ...UNTIL_DONE, startToCloseTimeout, summary }));
const effect = (summary: string) => bounded(summary);

/** The statuses in which the refund waits for a person's decision. */
const WAITS_FOR_A_PERSON: ReadonlySet<RefundStatus> = new Set(['AWAITING_APPROVAL', 'ESCALATED', 'NEEDS_OPERATOR']);

type OperatorAction =
  | { action: 'retry'; decision: OperatorDecision }
  | { action: 'refundManually'; decision: OperatorDecision & { reference: string } }
  | { action: 'abandon'; decision: OperatorDecision };

export async function refund(input: RefundInput): Promise<RefundState> {
  const { workflowId: refundId } = workflowInfo();
  const { orderId } = input;
  const policy: RefundPolicy = { ...DEFAULT_REFUND_POLICY, ...input.policy };
  /** The same key on every attempt and every replay: `${workflowId}:${step}`. */
  const key = (step: string) => `${refundId}:${step}`;
  const state: RefundState = {
    refundId,
    requestId: input.requestId,
    orderId,
    status: 'VALIDATING',
    amountMinor: typeof input.amount === 'number' ? input.amount : null,
    currency: null,
    reason: input.reason,
    requestedBy: input.requestedBy,
    approval: null,
    escalated: false,
    provider: null,
    manualReference: null,
    operatorAction: null,
    effects: { restocked: false, pointsReversed: 0, couponReturned: false, orderStatus: null },
    failure: null,
  };

  // Every operator action answers with a copy of the state; a refused signal only re-renders the details.
  const actions = operatorActions(() => state, () => show({ upsert: false }));
  let approval: { decision: 'approved' | 'rejected'; by: string; reason: string } | null = null;
  let operatorAction: OperatorAction | null = null;
  // Read through functions: the operator actions change these between awaits.
  const decided = () => approval;
  const requested = () => operatorAction;
  const awaitingApproval = () => state.status === 'AWAITING_APPROVAL' || state.status === 'ESCALATED';
  setHandler(refundStateQuery, () => state);

  // Approve and reject, as signals and as Updates; one rule for both doors.
  const decisionRefused = (decision: 'approved' | 'rejected', { by }: OperatorDecision): Refusal | null => {
    if (approval !== null) return { code: 'already_decided', message: `already ${approval.decision} by ${approval.by}` };
    if (state.approval?.decision === 'expired') return { code: 'already_decided', message: 'the approval expired: nobody decided in time' };
    if (!awaitingApproval()) return { code: 'not_awaiting_approval', message: `the refund is ${state.status}, not waiting for an approval` };
    if (decision === 'approved' && by === input.requestedBy) {
      return { code: 'four_eyes', message: `${by} requested this refund and cannot approve it; another person must` };
    }
    return null;
  };
  /** Once recorded, the refund moves on in the same workflow task (REFUNDING or REJECTED): the update answers with that. */
  const decide = (decision: 'approved' | 'rejected', { by, reason }: OperatorDecision) => {
    const before = state.status;
    approval = { decision, by, reason };
    return () => state.status !== before;
  };
  for (const [decision, signal, update] of [
    ['approved', approveRefundSignal, approveRefundUpdate],
    ['rejected', rejectRefundSignal, rejectRefundUpdate],
  ] as const) {
    actions.accept({ signal, update, check: (d) => decisionRefused(decision, d), apply: (d) => decide(decision, d) });
  }

  // After the provider refused for good: retry, refund manually or abandon.
  const actionRefused = (): Refusal | null => {
    if (state.status !== 'NEEDS_OPERATOR') return { code: 'not_waiting_for_operator', message: `the refund is ${state.status}, not waiting for an operator` };
    if (operatorAction !== null) {
      const pending = operatorAction;
      return { code: 'action_pending', message: `${pending.action} by ${pending.decision.by} is being carried out` };
    }
    return null;
  };
  const act = (request: OperatorAction) => {
    operatorAction = request;
    state.operatorAction = { action: request.action, by: request.decision.by, reason: request.decision.reason };
    // abandon ends the refund in the same workflow task; retry and manual refund call a service first
    if (request.action === 'abandon') return () => state.status === 'ABANDONED';
    return undefined;
  };
  actions.accept({ signal: retryRefundSignal, update: retryRefundUpdate, check: actionRefused, apply: (decision) => act({ action: 'retry', decision }) });
  actions.accept({
    signal: refundManuallySignal,
    update: refundManuallyUpdate,
    check: actionRefused,
    apply: (decision) => act({ action: 'refundManually', decision }),
    malformed: ({ reference }) => (typeof reference === 'string' && reference.trim() !== '' ? null : 'the manual refund needs its reference'),
  });
  actions.accept({ signal: abandonRefundSignal, update: abandonRefundUpdate, check: actionRefused, apply: (decision) => act({ action: 'abandon', decision }) });

  // The customer is known once the order has been read; the API or the parent may have set it at start.
  let customerId: string | null = null;
  let note: string | undefined;
  /** Shows where the refund stands: status, whether a person is needed, the money, the details. */
  const show = ({ upsert }: { upsert: boolean }) => {
    const refused = steps.refused();
    const stalled = steps.stalled();
    if (upsert) {
      upsertSearchAttributes([
        { key: FlowStatusKey, value: state.status },
        { key: NeedsAttentionKey, value: WAITS_FOR_A_PERSON.has(state.status) || refused.length > 0 || stalled !== null },
        { key: OrderIdKey, value: orderId },
        ...(state.amountMinor === null ? [] : [{ key: AmountMinorKey, value: state.amountMinor }]),
        ...(state.currency === null ? [] : [{ key: CurrencyKey, value: state.currency }]),
        ...(customerId === null ? [] : [{ key: CustomerIdKey, value: customerId }]),
      ]);
    }
    const amount = state.amountMinor === null ? 'full' : formatMoney({ amountMinor: state.amountMinor, currency: state.currency ?? '' });
    setCurrentDetails(
      `**${state.status}** · refund of ${amount} for order ${orderId}${note ? ` · ${note}` : ''}${describeRefusals(refused)}${describeStall(stalled)}${actions.ignored()}`,
    );
  };
  const steps = refusedSteps(show, actions);
  const persist = steps.persist;
  const provider = refundOutcomes(
    refundId,
    () => untilDone('Ask the provider about the refund', PSP_CALL).syncProviderRefund({ refundId }),
    steps.stalls,
  );
  actions.listen();
  const enter = (status: RefundStatus, details?: string) => {
    state.status = status;
    note = details;
    // a new status: the last refused signal and the operator action that led here are history
    state.operatorAction = null;
    actions.forget();
    show({ upsert: true });
  };
  const finish = (status: RefundStatus, failure: string | null = state.failure): RefundState => {
    state.failure = failure;
    enter(status, failure ?? undefined);
    return { ...state };
  };

  // Check the request against what was captured.
  enter('VALIDATING');
  const payment = await steps.outlast('Read the payment', () => bounded('Read the payment', PSP_CALL).readRefundablePayment({ orderId }));
  if (payment === null) return finish('REJECTED', `no_payment: order ${orderId} has no payment to refund`);
  state.currency = payment.currency;
  if (payment.capturedMinor === 0) return finish('REJECTED', `not_captured: the payment of order ${orderId} is ${payment.status}`);
  const amountMinor = input.amount === 'full' ? payment.refundableMinor : input.amount;
  state.amountMinor = amountMinor;
  if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) {
    return finish('REJECTED', input.amount === 'full' ? 'refund_exceeds_captured: nothing left to refund' : 'invalid_amount: must be a positive number of minor units');
  }
  if (amountMinor > payment.refundableMinor) {
    return finish('REJECTED', `refund_exceeds_captured: ${amountMinor} asked, ${payment.refundableMinor} of ${payment.capturedMinor} still refundable`);
  }
  const order = await steps.outlast('Read the order', () => bounded('Read the order').readOrderForRefund({ orderId }));
  customerId = order?.customerId ?? null;
  const restockProblem = checkRestock(input.restock, order);
  if (restockProblem !== null) return finish('REJECTED', `invalid_restock: ${restockProblem}`);

  // Large refunds need an operator's yes; silence escalates, then expires.
  if (input.preApproved) {
    state.approval = { decision: 'not_required', ...input.preApproved };
  } else if (amountMinor <= policy.approvalThresholdMinor) {
    state.approval = { decision: 'not_required', by: 'policy', reason: `at most ${policy.approvalThresholdMinor} minor units` };
  } else {
    enter('AWAITING_APPROVAL', `above ${policy.approvalThresholdMinor}: waiting for approve/reject`);
    const escalateAfter = Math.max(policy.escalateAfterMs, 1);
    if (!(await condition(() => decided() !== null, escalateAfter, { summary: `Escalate if nobody decides within ${duration(escalateAfter)}` }))) {
      state.escalated = true;
      enter('ESCALATED', `no decision after ${duration(policy.escalateAfterMs)}: still waiting for approve/reject`);
      const remainingMs = Math.max(policy.expireAfterMs - policy.escalateAfterMs, 1);
      if (!(await condition(() => decided() !== null, remainingMs, { summary: `Reject if nobody decides within ${duration(remainingMs)} more` }))) {
        state.approval = { decision: 'expired', by: 'system', reason: `no decision within ${duration(policy.expireAfterMs)}` };
        return finish('REJECTED', 'approval_expired: no operator decided in time');
      }
    }
    const decision = decided()!;
    state.approval = decision;
    if (decision.decision === 'rejected') return finish('REJECTED', `rejected by ${decision.by}: ${decision.reason}`);
  }

  // Ask the provider; the payments service holds the amount against the capture or refuses it.
  enter('REFUNDING');
  const asked = await steps.outlast('Request the refund', () =>
    bounded('Request the refund', PSP_CALL).requestProviderRefund({
      idempotencyKey: key('request-refund'),
      orderId,
      refundId,
      amountMinor,
      reason: input.reason,
    }),
  );
  if ('refused' in asked) return finish('REJECTED', describeRefusal(asked));
  noteProvider(asked);

  let outcome = asked.status === 'PENDING' ? await provider.decided() : asked;
  noteProvider(outcome);
  // A refund the provider refused for good waits for an operator; nothing is given up silently.
  for (let retries = 0; outcome.status === 'FAILED'; ) {
    operatorAction = null;
    enter('NEEDS_OPERATOR', `provider refused: ${outcome.failureReason ?? 'no reason given'} — retry, refund-manually or abandon`);
    await condition(() => requested() !== null);
    const request = requested()!;
    if (request.action === 'abandon') {
      return finish('ABANDONED', `abandoned by ${request.decision.by}: ${request.decision.reason}`);
    }
    if (request.action === 'retry') {
      retries += 1;
      const retried = await steps.outlast('Retry the refund', () =>
        bounded('Retry the refund', PSP_CALL).retryProviderRefund({ idempotencyKey: key(`retry-${retries}`), refundId }),
      );
      if ('refused' in retried) {
        state.failure = `retry by ${request.decision.by} refused: ${describeRefusal(retried)}`;
        continue;
      }
      state.failure = null;
      enter('REFUNDING', `retried by ${request.decision.by}`);
      noteProvider(retried);
      outcome = retried.status === 'PENDING' ? await provider.decided() : retried;
      noteProvider(outcome);
    } else {
      const { by, reference } = request.decision;
      const recorded = await steps.outlast('Record the manual refund', () =>
        bounded('Record the manual refund').recordManualRefund({
          idempotencyKey: key(`record-manual-${reference}`),
          refundId,
          reference,
          by,
        }),
      );
      if ('refused' in recorded) {
        state.failure = `manual refund by ${by} not recorded: ${describeRefusal(recorded)}`;
        continue;
      }
      state.failure = null;
      state.manualReference = reference;
      outcome = recorded;
      noteProvider(outcome);
    }
  }

  // The money is back: the effects follow it, each until done.
  enter('APPLYING_EFFECTS');
  const recorded = await persist('Record the refund on the order', () =>
    effect('Record the refund on the order').recordOrderRefund({ idempotencyKey: key('record-order-refund'), orderId, refundId, amountMinor }),
  );
  if (recorded.recorded) state.effects.orderStatus = recorded.status;
  else log.info('Order has no refund to record', { orderId, reason: recorded.reason });
  const fullyRefunded = recorded.recorded ? recorded.status === 'REFUNDED' : amountMinor >= payment.capturedMinor;

  if (input.restock.length > 0) {
    const { restocked, reason } = await persist('Restock', () =>
      effect('Restock the returned lines').restockLines({ idempotencyKey: key('restock'), restockId: refundId, orderId, lines: input.restock }),
    );
    state.effects.restocked = restocked;
    if (!restocked) log.warn('Returned lines not restocked', { orderId, reason });
  }

  if (order !== null) {
    state.effects.pointsReversed = await reverseLoyaltyPoints(order.customerId, fullyRefunded);
    if (policy.returnCouponOnFullRefund && fullyRefunded && order.couponCode !== null) {
      const { returned } = await persist('Return the coupon', () =>
        effect('Return the coupon').returnCoupon({ idempotencyKey: key('return-coupon'), orderId }),
      );
      state.effects.couponReturned = returned;
    }
  }
  return finish(state.manualReference === null ? 'SUCCEEDED' : 'REFUNDED_MANUALLY', null);

  function noteProvider(answer: ProviderRefund) {
    state.provider = { status: answer.status, failureReason: answer.failureReason, attempts: answer.attempt };
  }

  /**
   * Points in proportion to the amount: floor(awarded × amount / captured); the refund that
   * completes the order takes what is left, so a fully refunded order has every point reversed.
   * Refunds running side by side may overtake each other: the loyalty service refuses a
   * reversal beyond the award, and the share is computed again from a fresh reading.
   */
  async function reverseLoyaltyPoints(customerId: string, takesRemainder: boolean): Promise<number> {
    for (let round = 1; ; round++) {
      const { awarded, reversed } = await persist('Read the loyalty award', () =>
        effect('Read the loyalty award').readLoyaltyAward({ customerId, orderId }),
      );
      const remaining = Math.max(awarded - reversed, 0);
      const share = Math.floor((awarded * amountMinor) / payment!.capturedMinor);
      const points = takesRemainder ? remaining : Math.min(share, remaining);
      if (points === 0) return 0;
      const { outcome: reversal } = await persist('Reverse loyalty points', () =>
        effect('Reverse loyalty points').reverseLoyaltyPoints({
          idempotencyKey: key(round === 1 ? 'reverse-points' : `reverse-points-${round}`),
          orderId,
          reversalId: refundId,
          points,
        }),
      );
      if (reversal === 'reversed') return points;
      if (reversal === 'no_award') return 0;
    }
  }
}

/** Why the restock lines cannot be taken back, or null when they fit the order. */
function checkRestock(lines: RefundInput['restock'], order: OrderForRefund | null): string | null {
  if (lines.length === 0) return null;
  if (order === null) return 'the order does not exist';
  for (const { sku, quantity } of lines) {
    const sold = order.lines.find((line) => line.sku === sku)?.quantity ?? 0;
    if (!Number.isSafeInteger(quantity) || quantity <= 0) return `${sku}: quantity must be positive`;
    if (quantity > sold) return `${sku}: ${quantity} to restock, ${sold} ordered`;
  }
  return null;
}

function duration(ms: number): string {
  return ms >= 3_600_000 ? `${Math.round(ms / 360_000) / 10} h` : `${Math.round(ms / 6_000) / 10} min`;
}

function describeRefusal({ refused }: RefundRefusal): string {
  return `${refused.code}: ${refused.message}`;
}

