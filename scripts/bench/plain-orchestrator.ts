// The benchmark's baseline: the same checkout steps as workflows/checkout.ts, called
// in order from plain code with the same activity functions and idempotency keys,
// but without Temporal: no durable state, no retries, no timers. A failure undoes
// the steps taken so far, once, best effort, and is reported. This measures what
// the services cost; the difference to the workflow run is what Temporal costs.
// Like the workflow it takes the PSP's token for the card, never the number (the
// caller tokenises first, as the API does).
import type { CheckoutActivities } from '../../activities/index.ts';
import { checkoutWorkflowId, orderIdFor, type CheckoutInput } from '../../shared/checkout.ts';

export interface PlainCheckoutResult {
  status: 'PAID';
  orderId: string;
  totalMinor: number;
  capturedMinor: number;
}

/**
 * Runs one checkout. Every call carries `<keyPrefix>:<step>` as its idempotency key
 * (e.g. `bench-plain-<run>-<i>:reserve-stock`); the order id derives from input.checkoutKey.
 */
export async function runPlainCheckout(
  activities: CheckoutActivities,
  input: CheckoutInput,
  keyPrefix: string,
): Promise<PlainCheckoutResult> {
  const key = (step: string) => `${keyPrefix}:${step}`;
  const orderId = orderIdFor(input.checkoutKey);
  const undo: { step: string; run: () => Promise<unknown> }[] = [];

  try {
    undo.push({
      step: 'cancel-order',
      run: () => activities.cancelOrder({ idempotencyKey: key('cancel-order'), orderId, reason: 'benchmark step failed' }),
    });
    const order = await activities.createOrder({
      idempotencyKey: key('create-order'),
      orderId,
      checkoutId: checkoutWorkflowId(input.checkoutKey),
      customerId: input.customerId,
      currency: input.currency,
      lines: input.lines,
    });

    undo.push({ step: 'release-stock', run: () => activities.releaseStock({ idempotencyKey: key('release-stock'), orderId }) });
    await activities.reserveStock({
      idempotencyKey: key('reserve-stock'),
      orderId,
      lines: input.lines.map(({ sku, quantity }) => ({ sku, quantity })),
    });

    let discountMinor = 0;
    if (input.couponCode) {
      undo.push({ step: 'unlock-coupon', run: () => activities.unlockCoupon({ idempotencyKey: key('unlock-coupon'), orderId }) });
      ({ discountMinor } = await activities.lockCoupon({
        idempotencyKey: key('lock-coupon'),
        orderId,
        code: input.couponCode,
        customerId: input.customerId,
        subtotalMinor: order.subtotalMinor,
        currency: input.currency,
      }));
    }

    const { totalMinor } = await activities.markAwaitingPayment({
      idempotencyKey: key('await-payment'),
      orderId,
      discountMinor,
      couponCode: input.couponCode ?? null,
    });

    undo.push({ step: 'void-payment', run: () => activities.voidPayment({ idempotencyKey: key('void-payment'), orderId }) });
    const { paymentId } = await activities.authorizePayment({
      idempotencyKey: key('authorize-payment'),
      orderId,
      amountMinor: totalMinor,
      currency: input.currency,
      paymentMethod: input.paymentMethod,
    });

    const { capturedMinor } = await activities.capturePayment({ idempotencyKey: key('capture-payment'), orderId });
    undo.length = 0; // money moved: from here on the only way is forward

    await activities.markOrderPaid({ idempotencyKey: key('pay-order'), orderId, paymentId, amountMinor: capturedMinor });
    await activities.commitStock({ idempotencyKey: key('commit-stock'), orderId });
    if (input.couponCode) await activities.redeemCoupon({ idempotencyKey: key('redeem-coupon'), orderId });
    await activities.awardLoyaltyPoints({
      idempotencyKey: key('award-loyalty'),
      orderId,
      customerId: input.customerId,
      amountMinor: capturedMinor,
      currency: input.currency,
    });
    return { status: 'PAID', orderId, totalMinor, capturedMinor };
  } catch (err) {
    const leftovers = await undoAll(undo);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(leftovers.length ? `${message} (undo failed: ${leftovers.join(', ')})` : message, { cause: err });
  }
}

/** Runs the undo steps newest first; returns the ones that failed. */
async function undoAll(undo: { step: string; run: () => Promise<unknown> }[]): Promise<string[]> {
  const failed: string[] = [];
  for (const { step, run } of [...undo].reverse()) {
    try {
      await run();
    } catch {
      failed.push(step);
    }
  }
  return failed;
}
