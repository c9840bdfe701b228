// How the checkout learns what the provider decided. The provider notifies us (a webhook the
// API turns into a `paymentEvent` signal), but a notification can be lost, duplicated, late or
// out of order, so it is never acted on: it only cuts the current wait short. Every decision
// comes from asking the provider (`syncPayment`); without notifications the checkout still gets
// there, asking on its own at growing intervals (provider-wait.ts). A wait without a deadline
// (money already moving) that outlasts the payment deadline has stalled.
import { log, setHandler } from '@temporalio/workflow';
import type { PaymentSnapshot } from '../activities/index.ts';
import type { CheckoutTiming, PaymentProgress } from '../shared/checkout.ts';
import { paymentEventSignal, type PaymentStatus } from '../shared/payments.ts';
import { askUntilSettled, type Notifications } from './provider-wait.ts';
import type { ProviderStalls } from './refused-steps.ts';

export const DEFAULT_TIMING: Required<CheckoutTiming> = {
  paymentDeadlineMs: 10 * 60_000,
  firstPaymentCheckMs: 3_000,
  maxPaymentCheckIntervalMs: 30_000,
};

const MIN_CHECK_INTERVAL_MS = 100;

/** The provider has decided the authorization (it is no longer pending). */
export const authorizationDecided = (status: PaymentStatus) => status !== 'AUTHORIZATION_PENDING';
/** The money has moved, or can no longer move under this capture. */
export const captureSettled = (status: PaymentStatus) => status === 'CAPTURED' || status === 'REFUNDED' || status === 'VOIDED';

export interface PaymentOutcomes {
  /**
   * Asks the provider until `settled(status)` holds, waiting for a notification (or the next
   * interval) between asks; returns the answer that settled it, or null if `deadline` (workflow
   * time, ms) came first. Without a deadline it keeps asking: that wait is for money already moving;
   * past the payment deadline it has stalled (see above), and `retryStep` makes it ask at once.
   */
  until(settled: (status: PaymentStatus) => boolean, deadline?: number): Promise<PaymentSnapshot | null>;
  /** Records a decision the provider gave directly (authorize or capture answered it). */
  answered(status: PaymentStatus): void;
}

/** Listens for the order's payment notifications; call once, at the start of the workflow. */
export function paymentOutcomes(
  orderId: string,
  progress: PaymentProgress,
  timing: CheckoutTiming | undefined,
  askProvider: () => Promise<PaymentSnapshot>,
  stalls?: ProviderStalls,
): PaymentOutcomes {
  const settings = { ...DEFAULT_TIMING, ...timing };
  // `timing` comes from the input: a zero or inverted interval must not turn into a tight loop of checks.
  const firstPaymentCheckMs = Math.max(settings.firstPaymentCheckMs, MIN_CHECK_INTERVAL_MS);
  const maxPaymentCheckIntervalMs = Math.max(settings.maxPaymentCheckIntervalMs, firstPaymentCheckMs);
  const seen = new Set<string>();
  const notifications: Notifications = { pending: false };

  setHandler(paymentEventSignal, (event) => {
    if (event.orderId !== orderId) {
      log.warn('Payment notification for another order ignored', { eventId: event.eventId, orderId: event.orderId });
      return;
    }
    if (seen.has(event.eventId)) return; // a redelivery: already prompted a check
    seen.add(event.eventId);
    progress.eventsReceived = seen.size;
    notifications.pending = true;
  });

  return {
    async until(settled, deadline) {
      const settledBy = await askUntilSettled({
        what: 'payment',
        notifications,
        firstIntervalMs: firstPaymentCheckMs,
        maxIntervalMs: maxPaymentCheckIntervalMs,
        stalledAfterMs: settings.paymentDeadlineMs,
        deadline,
        stalls,
        async ask() {
          const snapshot = await askProvider();
          progress.checks += 1;
          progress.status = snapshot.status;
          progress.refundedMinor = snapshot.refundedMinor;
          return snapshot;
        },
        settled: (snapshot) => settled(snapshot.status),
        logFields: (snapshot) => ({ orderId, status: snapshot.status }),
      });
      if (settledBy === null) return null;
      progress.source = settledBy.prompted ? 'signal' : 'active_query';
      return settledBy.answer;
    },
    answered(status) {
      progress.status = status;
      progress.source = 'provider_answer';
    },
  };
}
