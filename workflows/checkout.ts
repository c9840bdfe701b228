// The checkout as a saga. Each step registers its compensation before it runs (a step can
// take effect and still time out); a business refusal, an unavailable service or the `cancel`
// signal before capture undoes what was registered, newest first. From capture on, the money
// moves: nothing can cancel the checkout any more and every remaining step runs until done.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { CheckoutActivities } from '../activities/index.ts';
import {
  cancelCheckoutSignal,
  checkoutStateQuery,
  orderIdFor,
  type CheckoutInput,
  type CheckoutResult,
  type CheckoutState,
  type CheckoutStatus,
  type CheckoutStep,
  type CompensationRecord,
} from '../shared/checkout.ts';
import { AmountMinorKey, CheckoutStatusKey, CheckoutStepKey, OrderIdKey } from '../shared/search-attributes.ts';

/** A plain service call; the HTTP client gives up at 8 s, so a slow service reports itself. */
const SERVICE_CALL = '10 seconds';
/** Calls that go through to the PSP (authorize, capture, void) match the payments client's 15 s. */
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
/** Capture, fulfilment and compensation: no attempt limit, since giving up would lose money or stock. */
const UNTIL_DONE: ActivityOptions = {
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

// Each call names itself in the Web UI through the activity summary.
const businessStep = (summary: string) => proxyActivities<CheckoutActivities>({ ...BUSINESS_STEP, summary });
const paymentStep = (summary: string) => proxyActivities<CheckoutActivities>({ ...AUTHORIZE, summary });
const untilDone = (summary: string, startToCloseTimeout: Duration = SERVICE_CALL) =>
  proxyActivities<CheckoutActivities>({ ...UNTIL_DONE, startToCloseTimeout, summary });

export async function checkout(input: CheckoutInput): Promise<CheckoutResult> {
  const { workflowId } = workflowInfo();
  const orderId = orderIdFor(input.checkoutKey);
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
    cancelReason: null,
    compensations: [],
  };
  const undo: { record: CompensationRecord; run: () => Promise<unknown> }[] = [];
  const compensateWith = (name: string, run: () => Promise<unknown>) => {
    const record: CompensationRecord = { name, status: 'PENDING' };
    state.compensations.push(record);
    undo.push({ record, run });
  };

  const beforeCapture = new CancellationScope();
  let captureStarted = false;
  let cancelRequested: string | null = null;
  setHandler(checkoutStateQuery, () => state);
  setHandler(cancelCheckoutSignal, ({ reason }) => {
    if (captureStarted || state.step === 'COMPENSATING') {
      log.info('Cancel ignored: the checkout is already past the point of cancelling', { reason, step: state.step });
      return;
    }
    cancelRequested ??= reason;
    beforeCapture.cancel();
  });

  const enter = (step: CheckoutStep, status: CheckoutStatus = 'RUNNING') => {
    state.step = step;
    state.status = status;
    upsertSearchAttributes([
      { key: CheckoutStepKey, value: step },
      { key: CheckoutStatusKey, value: status },
      { key: OrderIdKey, value: orderId },
      { key: AmountMinorKey, value: state.totalMinor || state.subtotalMinor },
    ]);
    setCurrentDetails(`**${step}** · order ${orderId} · ${state.totalMinor || state.subtotalMinor} ${state.currency}`);
  };

  /** Undo every registered step, newest first; nothing can cancel this and nothing is skipped. */
  const compensate = async (reason: string): Promise<CheckoutResult> => {
    state.cancelReason = reason;
    enter('COMPENSATING');
    await CancellationScope.nonCancellable(async () => {
      for (const { record, run } of [...undo].reverse()) {
        await persist(record.name, run);
        record.status = 'DONE';
      }
    });
    enter('DONE', 'CANCELLED');
    return { ...state, status: 'CANCELLED' };
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
      compensateWith('voidPayment', () =>
        untilDone('Void payment', PSP_CALL).voidPayment({ idempotencyKey: key('void-payment'), orderId }),
      );
      const { paymentId } = await paymentStep('Authorize payment').authorizePayment({
        idempotencyKey: key('authorize-payment'),
        orderId,
        amountMinor: state.totalMinor,
        currency: input.currency,
        paymentMethod: input.paymentMethod,
      });
      state.paymentId = paymentId;
    });
  } catch (err) {
    return await compensate(cancelRequested ?? failureReason(err, unavailable));
  }
  // A cancel that arrived as the authorization came back still counts: capture has not started.
  if (cancelRequested !== null) return await compensate(cancelRequested);

  // Point of no return: a capture that timed out may have taken the money, so from here on
  // the cancel signal is ignored and every step is retried until it succeeds.
  captureStarted = true;
  return await CancellationScope.nonCancellable(async () => {
    enter('CAPTURING_PAYMENT');
    try {
      const { capturedMinor } = await untilDone('Capture payment', PSP_CALL).capturePayment({
        idempotencyKey: key('capture-payment'),
        orderId,
      });
      state.capturedMinor = capturedMinor;
    } catch (err) {
      // Only a refusal gets here (say, the authorization was voided meanwhile): no money moved.
      return await compensate(failureReason(err, 'payment provider unavailable'));
    }
    undo.length = 0;
    state.compensations = [];

    enter('FULFILLING');
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
    await persist('commitStock', () =>
      untilDone('Commit stock').commitStock({ idempotencyKey: key('commit-stock'), orderId }),
    );
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

/**
 * For steps that must not give up. Their retry policy already retries infrastructure failures
 * forever; a refusal (say, a compensation the service rejects) will not heal by itself, so keep
 * it visible and try again on a slow durable timer until an operator has fixed the cause.
 */
async function persist<T>(name: string, run: () => Promise<T>): Promise<T> {
  for (let round = 0; ; round++) {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const waitMinutes = Math.min(2 ** round, 60);
      const why = describe(err);
      log.error(`${name} refused; retrying in ${waitMinutes} min`, { error: why });
      setCurrentDetails(`**${name}** refused (${why}); retrying in ${waitMinutes} min — needs an operator`);
      await sleep(`${waitMinutes} minutes`);
    }
  }
}

/** Why the checkout was cancelled, from what stopped it. */
function failureReason(err: unknown, unavailable: string): string {
  if (isCancellation(err)) return 'checkout cancelled';
  if (!(err instanceof ActivityFailure)) throw err; // a bug in this code: fail the task, fix, replay
  const cause = err.cause;
  if (cause instanceof ApplicationFailure && cause.nonRetryable) return `${cause.type}: ${cause.message}`;
  return unavailable; // retries exhausted or timed out
}

function describe(err: ActivityFailure): string {
  const cause = err.cause;
  return cause instanceof ApplicationFailure ? `${cause.type}: ${cause.message}` : (cause?.message ?? err.message);
}
