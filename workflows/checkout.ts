// The checkout as a saga. Each step registers its compensation before it runs (a step can
// take effect and still time out); a business refusal, an unavailable service, a payment the
// provider does not decide before the deadline, or an operator's `cancel` (Update or signal)
// before capture undoes what was registered, newest first. From capture on, the money moves:
// nothing can cancel the checkout any more and every remaining step runs until done.
//
// The provider decides payments asynchronously. The checkout waits for its notification but
// never depends on it: it asks the provider itself (workflows/payment-outcome.ts). And it never
// leaves money taken for a cancelled order: if the provider cannot void a payment and then
// approves it, the order is completed after all; if the stock is gone by then, it is refunded
// by a Refund workflow started as a child (workflows/refund-child.ts).
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { CheckoutActivities, PaymentSnapshot } from '../activities/index.ts';
import {
  cancelCheckoutSignal,
  cancelCheckoutUpdate,
  checkoutStateQuery,
  orderIdFor,
  refundRequestIdFor,
  type CancelRequest,
  type CheckoutInput,
  type CheckoutResult,
  type CheckoutState,
  type CheckoutStatus,
  type CheckoutStep,
  type CompensationRecord,
} from '../shared/checkout.ts';
import { BusinessFailure } from '../shared/errors.ts';
import { formatMoney } from '../shared/money.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  CustomerIdKey,
  DEFAULT_REGION,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../shared/search-attributes.ts';
import { authorizationDecided, captureSettled, DEFAULT_TIMING, paymentOutcomes } from './payment-outcome.ts';
import type { Refusal } from '../shared/operator-actions.ts';
import { operatorActions } from './operator-actions.ts';
import { moneyReturned, refundThroughWorkflow } from './refund-child.ts';
import { describeRefusals, describeStall, isRefusal, OPERATOR_VISIBILITY_PATCH, refusedSteps, untilStuck } from './refused-steps.ts';

/** A plain service call; the HTTP client gives up at 8 s, so a slow service reports itself. */
const SERVICE_CALL = '10 seconds';
/** Calls that go through to the PSP (authorize, capture, void, sync) match the payments client's 15 s. */
const PSP_CALL = '20 seconds';

/** Before the money moves: a refusal is final; an outage is retried for a while, then the checkout gives up. */
const BUSINESS_STEP: ActivityOptions = {
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 6 },
};
/** The PSP can be slow; if it stays unavailable, give up and compensate rather than hold the customer. */
const AUTHORIZE: ActivityOptions = {
  startToCloseTimeout: PSP_CALL,
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '20 seconds', maximumAttempts: 4 },
};
/**
 * Capture, fulfilment, compensation and asking the provider: giving up would lose money or stock.
 * Each call is bounded (`untilStuck`, about 4 minutes of attempts) and runs under `persist` or
 * `outlast`, which then keep trying on a slow timer: a service down for hours shows as
 * NeedsAttention with its last error instead of retrying unseen.
 */
const UNTIL_DONE: ActivityOptions = {
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

// Each call names itself in the Web UI through the activity summary.
const businessStep = (summary: string) => proxyActivities<CheckoutActivities>({ ...BUSINESS_STEP, summary });
const paymentStep = (summary: string) => proxyActivities<CheckoutActivities>({ ...AUTHORIZE, summary });
const untilDone = (summary: string, startToCloseTimeout: Duration = SERVICE_CALL) =>
  proxyActivities<CheckoutActivities>(untilStuck({ ...UNTIL_DONE, startToCloseTimeout, summary }));
/**
 * Asking the provider while the customer may still cancel runs outside `persist` (a cancel must
 * reach it): without a limit, as before, since a bounded ask that gave up would cancel the checkout.
 */
const askWhileCancellable = (summary: string) => proxyActivities<CheckoutActivities>({ ...UNTIL_DONE, startToCloseTimeout: PSP_CALL, summary });

/** What the payment's undo reports when it could not release the money: the customer paid after all. */
const PAID_AFTER_ALL = Symbol('paid after all');

export async function checkout(input: CheckoutInput): Promise<CheckoutResult> {
  const { workflowId } = workflowInfo();
  const orderId = orderIdFor(input.checkoutKey);
  const timing = { ...DEFAULT_TIMING, ...input.timing };
  /** The same key on every attempt and every replay: `${workflowId}:${step}`. */
  const key = (step: string) => `${workflowId}:${step}`;
  const state: CheckoutState = {
    checkoutId: workflowId,
    orderId,
    customerId: input.customerId,
    status: 'RUNNING',
    step: 'CREATING_ORDER',
    orderStatus: null,
    currency: input.currency,
    subtotalMinor: 0,
    discountMinor: 0,
    totalMinor: 0,
    paymentId: null,
    capturedMinor: 0,
    payment: { status: null, source: null, eventsReceived: 0, checks: 0, deadline: null, refundedMinor: 0 },
    cancelReason: null,
    compensations: [],
    refund: null,
  };
  const undo: { record: CompensationRecord; run: () => Promise<unknown> }[] = [];
  const compensateWith = (name: string, run: () => Promise<unknown>) => {
    const record: CompensationRecord = { name, status: 'PENDING' };
    state.compensations.push(record);
    undo.push({ record, run });
  };
  /** A step whose effect changed (an authorization that became a capture) gets a different undo, in the same place. */
  const replaceCompensation = (previous: string, name: string, run: () => Promise<unknown>) => {
    const at = undo.findIndex((u) => u.record.name === previous);
    if (at < 0) return compensateWith(name, run);
    const record: CompensationRecord = { name, status: 'PENDING' };
    state.compensations[state.compensations.indexOf(undo[at]!.record)] = record;
    undo[at] = { record, run };
  };

  const beforeCapture = new CancellationScope();
  let captureStarted = false;
  let cancelRequested: string | null = null;
  const pastCancelling = () => captureStarted || state.step === 'COMPENSATING';
  setHandler(checkoutStateQuery, () => state);
  // Every operator action answers with a copy of the state; a refused signal only re-renders the details.
  const actions = operatorActions(() => state, () => show({ upsert: false }));
  // `by` is the operator's identity on the Update; the CLI's signal may come without one.
  actions.accept<CancelRequest & { by?: string }>({
    signal: cancelCheckoutSignal,
    update: cancelCheckoutUpdate,
    check: (): Refusal | null => {
      if (captureStarted) return { code: 'capture_started', message: 'capture has started: the money moves, so the checkout can no longer be cancelled (refund it instead)' };
      if (cancelRequested !== null || state.step === 'COMPENSATING') {
        return { code: 'already_cancelling', message: `the checkout is already being cancelled: ${cancelRequested ?? state.cancelReason ?? 'checkout cancelled'}` };
      }
      return null;
    },
    apply: ({ reason, by }) => {
      if (by !== undefined) log.info('Checkout cancelled by an operator', { by, reason });
      cancelRequested = reason;
      beforeCapture.cancel();
      // The scope's cancellation reaches the step in flight at once and the undo begins (COMPENSATING)
      // in the same workflow task: the update answers with that.
      return () => state.cancelReason !== null || state.status !== 'RUNNING';
    },
  });
  const steps = refusedSteps(show, actions);
  actions.listen();
  const persist = steps.persist;
  // Asking the provider is cancellable while the customer may still cancel; after that it must not give up.
  const checkPayment = () =>
    pastCancelling()
      ? persist('syncPayment', () => untilDone('Check payment with the provider', PSP_CALL).syncPayment({ orderId }))
      : askWhileCancellable('Check payment with the provider').syncPayment({ orderId });
  const payment = paymentOutcomes(orderId, state.payment, timing, checkPayment, steps.stalls);

  /** Shows where the checkout stands: step, status, whether a person is needed, the money, the details. */
  function show({ upsert }: { upsert: boolean }) {
    const refused = steps.refused();
    const stalled = steps.stalled();
    const amountMinor = state.totalMinor || state.subtotalMinor;
    if (upsert) {
      upsertSearchAttributes([
        { key: CheckoutStepKey, value: state.step },
        { key: FlowStatusKey, value: state.status },
        { key: NeedsAttentionKey, value: refused.length > 0 || stalled !== null },
        { key: OrderIdKey, value: orderId },
        { key: CustomerIdKey, value: input.customerId },
        { key: AmountMinorKey, value: amountMinor },
        { key: CurrencyKey, value: state.currency },
        { key: RegionKey, value: input.region ?? DEFAULT_REGION },
      ]);
    }
    const paymentStatus = state.payment.status ? ` · payment ${state.payment.status}` : '';
    setCurrentDetails(
      `**${state.step}** · order ${orderId} · ${formatMoney({ amountMinor, currency: state.currency })}${paymentStatus}${describeRefusals(refused)}${describeStall(stalled)}${actions.ignored()}`,
    );
  }
  const enter = (step: CheckoutStep, status: CheckoutStatus = 'RUNNING') => {
    state.step = step;
    state.status = status;
    actions.forget();
    show({ upsert: true });
  };

  /**
   * Undo every registered step, newest first; nothing can cancel this and nothing is skipped.
   * The payment is undone first: if the provider cannot release it and the customer paid after
   * all, nothing else has been undone yet and the order is completed instead.
   */
  const compensate = async (reason: string): Promise<CheckoutResult> => {
    state.cancelReason = reason;
    state.payment.deadline = null;
    enter('COMPENSATING');
    const paidAfterAll = await CancellationScope.nonCancellable(async () => {
      for (const { record, run } of [...undo].reverse()) {
        if (record.status === 'DONE') continue;
        if ((await persist(record.name, run)) === PAID_AFTER_ALL) return true;
        record.status = 'DONE';
      }
      return false;
    });
    if (paidAfterAll) {
      log.warn('Payment went through after the checkout gave up on it: completing the order', { reason });
      state.cancelReason = null;
      return await captureAndFulfil();
    }
    enter('DONE', 'CANCELLED');
    return { ...state, status: 'CANCELLED' };
  };

  let voidAttempts = 0;
  /**
   * The authorization's undo. A void the provider refuses because it is still deciding is
   * followed by asking for the decision (no deadline: money may be moving). An approval then
   * stands, since the customer paid, unless the customer cancelled: then it is voided now.
   */
  const releasePayment = async (): Promise<typeof PAID_AFTER_ALL | void> => {
    for (;;) {
      // Each attempt has its own key: the answer to an earlier attempt must never stand in for this one.
      voidAttempts += 1;
      let outcome;
      try {
        ({ outcome } = await untilDone('Void payment', PSP_CALL).voidPayment({
          idempotencyKey: key(voidAttempts === 1 ? 'void-payment' : `void-payment-${voidAttempts}`),
          orderId,
        }));
      } catch (err) {
        // A void that got no answer (attempts spent on an outage) is the same attempt when tried again.
        if (err instanceof ActivityFailure && !isRefusal(err)) voidAttempts -= 1;
        throw err;
      }
      if (outcome === 'released') return;
      if (outcome === 'captured') return PAID_AFTER_ALL;
      const { status } = (await payment.until(authorizationDecided))!;
      if (status === 'DECLINED' || status === 'VOIDED') return;
      if (status !== 'AUTHORIZED' || cancelRequested === null) return PAID_AFTER_ALL;
    }
  };

  /**
   * The undo of a capture: give the money back through the Refund workflow, as a child that
   * outlives this checkout, and wait for its outcome (an operator may have to decide it). A
   * refund that ends without the money back is on record here and in the refund; the rest of
   * the undo goes on, and reconciliation finds the money still held for a cancelled order.
   */
  const refundPayment = async () => {
    const reason = state.cancelReason ?? 'checkout cancelled';
    const outcome = await refundThroughWorkflow(
      {
        requestId: refundRequestIdFor(input.checkoutKey),
        orderId,
        amount: 'full',
        reason,
        restock: [],
        requestedBy: 'checkout',
        preApproved: { by: 'checkout', reason },
      },
      {
        onStarted: (workflowId) => (state.refund = { workflowId, status: 'RUNNING', amountMinor: null, failure: null }),
        // A refund started elsewhere that does not end shows here as a stall (refund-child.ts).
        stalls: steps.stalls,
      },
    );
    state.refund = {
      workflowId: outcome.workflowId,
      status: outcome.status,
      amountMinor: outcome.state?.amountMinor ?? null,
      failure: outcome.state?.failure ?? null,
    };
    if (moneyReturned(outcome.status)) state.payment.refundedMinor = outcome.state?.amountMinor ?? state.capturedMinor;
    else log.error('Refund ended without the money back', { refund: state.refund });
  };

  // What to say when a step's service stays unavailable past its retry budget.
  let unavailable = 'order service unavailable';
  try {
    await beforeCapture.run(async () => {
      enter('CREATING_ORDER');
      compensateWith('cancelOrder', async () => {
        const { cancelled } = await untilDone('Cancel order').cancelOrder({
          idempotencyKey: key('cancel-order'),
          orderId,
          reason: state.cancelReason ?? 'checkout cancelled',
        });
        if (cancelled) state.orderStatus = 'CANCELLED';
      });
      const order = await businessStep('Create order').createOrder({
        idempotencyKey: key('create-order'),
        orderId,
        checkoutId: workflowId,
        customerId: input.customerId,
        currency: input.currency,
        lines: input.lines,
      });
      state.orderStatus = 'PENDING';
      state.subtotalMinor = order.subtotalMinor;

      enter('RESERVING_STOCK');
      unavailable = 'inventory service unavailable';
      compensateWith('releaseStock', () =>
        untilDone('Release stock').releaseStock({ idempotencyKey: key('release-stock'), orderId }),
      );
      await businessStep('Reserve stock').reserveStock({
        idempotencyKey: key('reserve-stock'),
        orderId,
        lines: input.lines.map(({ sku, quantity }) => ({ sku, quantity })),
      });

      if (input.couponCode) {
        enter('LOCKING_COUPON');
        unavailable = 'coupon service unavailable';
        compensateWith('unlockCoupon', () =>
          untilDone('Unlock coupon').unlockCoupon({ idempotencyKey: key('unlock-coupon'), orderId }),
        );
        const { discountMinor } = await businessStep('Lock coupon').lockCoupon({
          idempotencyKey: key('lock-coupon'),
          orderId,
          code: input.couponCode,
          customerId: input.customerId,
          subtotalMinor: state.subtotalMinor,
          currency: input.currency,
        });
        state.discountMinor = discountMinor;
      }

      enter('AUTHORIZING_PAYMENT');
      unavailable = 'order service unavailable';
      state.totalMinor = state.subtotalMinor - state.discountMinor;
      await businessStep('Mark order awaiting payment').markAwaitingPayment({
        idempotencyKey: key('await-payment'),
        orderId,
        discountMinor: state.discountMinor,
        couponCode: input.couponCode ?? null,
      });
      state.orderStatus = 'AWAITING_PAYMENT';

      unavailable = 'payment provider unavailable';
      compensateWith('voidPayment', releasePayment);
      const deadline = Date.now() + timing.paymentDeadlineMs;
      state.payment.deadline = new Date(deadline).toISOString();
      const authorization = await paymentStep('Authorize payment').authorizePayment({
        idempotencyKey: key('authorize-payment'),
        orderId,
        amountMinor: state.totalMinor,
        currency: input.currency,
        paymentMethod: input.paymentMethod,
      });
      state.paymentId = authorization.paymentId;
      // Its own step, so operators can list checkouts waiting for the provider too long; runs
      // recorded before the step existed replay without its upsert.
      if (!authorizationDecided(authorization.status) && patched(OPERATOR_VISIBILITY_PATCH)) enter('AWAITING_PAYMENT');
      const decision = await awaitAuthorization(authorization.status, deadline);
      state.payment.deadline = null;
      if (decision === null) throw new CheckoutStopped(`payment not confirmed by the provider within ${timing.paymentDeadlineMs / 1000} s`);
      if (decision.status === 'DECLINED') {
        throw new CheckoutStopped(`${BusinessFailure.PaymentDeclined}: card declined (${decision.declineCode ?? 'no reason given'})`);
      }
      if (decision.status === 'VOIDED' || decision.status === 'REFUNDED') {
        throw new CheckoutStopped(`payment ${decision.status.toLowerCase()} at the provider before capture`);
      }
    });
  } catch (err) {
    return await compensate(cancelRequested ?? failureReason(err, unavailable));
  }
  // A cancel that arrived as the authorization came back still counts: capture has not started.
  if (cancelRequested !== null) return await compensate(cancelRequested);
  return await captureAndFulfil();

  /** The provider's decision on the authorization, or null if it did not decide before the deadline. */
  async function awaitAuthorization(answered: PaymentSnapshot['status'], deadline: number) {
    if (!authorizationDecided(answered)) return await payment.until(authorizationDecided, deadline);
    payment.answered(answered);
    return { status: answered, declineCode: null };
  }

  /**
   * Point of no return: a capture that timed out may have taken the money, so from here on
   * a cancel is refused (`capture_started`) and every step is retried until it succeeds.
   */
  async function captureAndFulfil(): Promise<CheckoutResult> {
    captureStarted = true;
    return await CancellationScope.nonCancellable(async () => {
      enter('CAPTURING_PAYMENT');
      let captured: PaymentSnapshot | { status: PaymentSnapshot['status']; capturedMinor: number };
      try {
        // A provider down for long keeps the capture waiting, visibly: giving up could leave money taken.
        const capture = await steps.outlast('capturePayment', () =>
          untilDone('Capture payment', PSP_CALL).capturePayment({ idempotencyKey: key('capture-payment'), orderId }),
        );
        if (captureSettled(capture.status)) {
          payment.answered(capture.status);
          captured = capture;
        } else {
          captured = (await payment.until(captureSettled))!;
        }
      } catch (err) {
        // Only a refusal gets here (say, the authorization was voided meanwhile): no money moved.
        return await compensate(failureReason(err, 'payment provider unavailable'));
      }
      if (captured.status === 'VOIDED') return await compensate('payment voided at the provider before capture');
      state.capturedMinor = captured.capturedMinor;
      // The money is taken: from here the payment's undo is a refund.
      replaceCompensation('voidPayment', 'refundPayment', refundPayment);

      enter('FULFILLING');
      // The stock decides whether the sale stands: a reservation released meanwhile (say, while the
      // payment was still being decided) cannot be committed, so the customer gets the money back.
      const stockCommitted = await persist('commitStock', async () => {
        try {
          await untilDone('Commit stock').commitStock({ idempotencyKey: key('commit-stock'), orderId });
          return true;
        } catch (err) {
          if (refusedAs(err, BusinessFailure.AlreadyCompensated)) return false;
          throw err;
        }
      });
      if (!stockCommitted) return await compensate(`${BusinessFailure.OutOfStock}: the stock reservation was released before the payment was decided; payment refunded`);
      undo.length = 0;
      state.compensations = [];

      const paymentId = state.paymentId ?? '';
      await persist('markOrderPaid', () =>
        untilDone('Mark order paid').markOrderPaid({
          idempotencyKey: key('pay-order'),
          orderId,
          paymentId,
          amountMinor: state.capturedMinor,
        }),
      );
      state.orderStatus = 'PAID';
      if (input.couponCode) {
        await persist('redeemCoupon', () =>
          untilDone('Redeem coupon').redeemCoupon({ idempotencyKey: key('redeem-coupon'), orderId }),
        );
      }
      await persist('awardLoyaltyPoints', () =>
        untilDone('Award loyalty points').awardLoyaltyPoints({
          idempotencyKey: key('award-loyalty'),
          orderId,
          customerId: input.customerId,
          amountMinor: state.capturedMinor,
          currency: input.currency,
        }),
      );
      enter('DONE', 'PAID');
      return { ...state, status: 'PAID' };
    });
  }
}

/** The checkout decided to stop (a decline, a payment never decided); the message is the reason. */
class CheckoutStopped extends Error {
  override readonly name = 'CheckoutStopped';
}

/** Why the checkout was cancelled, from what stopped it. */
function failureReason(err: unknown, unavailable: string): string {
  if (isCancellation(err)) return 'checkout cancelled';
  if (err instanceof CheckoutStopped) return err.message;
  if (!(err instanceof ActivityFailure)) throw err; // a bug in this code: fail the task, fix, replay
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.nonRetryable) return `${cause.type}: ${cause.message}`;
  return unavailable; // retries exhausted or timed out
}

/** True when an activity was refused with this business failure type. */
function refusedAs(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

