// How the checkout learns what the provider decided. The provider notifies us (a webhook the
// API turns into a `paymentEvent` signal), but a notification can be lost, duplicated, late or
// out of order, so it is never acted on: it only cuts the current wait short. Every decision
// comes from asking the provider (`syncPayment`); without notifications the checkout still gets
// there, asking on its own at growing intervals. A wait without a deadline (money already
// moving) that outlasts the payment deadline has stalled: it asks at most hourly from then on,
// so the run's history lasts about a year, and it shows the stall to operators until it ends.
import { condition, log, patched, setHandler } from '@temporalio/workflow';
import type { PaymentSnapshot } from '../activities/index.ts';
import type { CheckoutTiming, PaymentProgress } from '../shared/checkout.ts';
import { paymentEventSignal, type PaymentStatus } from '../shared/payments.ts';
import { STALLED_WAIT_PATCH, type ProviderStalls } from './refused-steps.ts';

export const DEFAULT_TIMING: Required<CheckoutTiming> = {
  paymentDeadlineMs: 10 * 60_000,
  firstPaymentCheckMs: 3_000,
  maxPaymentCheckIntervalMs: 30_000,
};

const MIN_CHECK_INTERVAL_MS = 100;
/**
 * How far apart a stalled wait asks (it still doubles up to this): about 11 history events an
 * hour, so a run waits well over a year before it reaches Temporal's history limit.
 */
export const STALLED_CHECK_INTERVAL_MS = 60 * 60_000;

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
  const stalledAfterMs = settings.paymentDeadlineMs;
  // `timing` comes from the input: a zero or inverted interval must not turn into a tight loop of checks.
  const firstPaymentCheckMs = Math.max(settings.firstPaymentCheckMs, MIN_CHECK_INTERVAL_MS);
  const maxPaymentCheckIntervalMs = Math.max(settings.maxPaymentCheckIntervalMs, firstPaymentCheckMs);
  const seen = new Set<string>();
  let notified = false;

  setHandler(paymentEventSignal, (event) => {
    if (event.orderId !== orderId) {
      log.warn('Payment notification for another order ignored', { eventId: event.eventId, orderId: event.orderId });
      return;
    }
    if (seen.has(event.eventId)) return; // a redelivery: already prompted a check
    seen.add(event.eventId);
    progress.eventsReceived = seen.size;
    notified = true;
  });

  return {
    async until(settled, deadline) {
      let intervalMs = firstPaymentCheckMs;
      const startedAt = Date.now();
      let stalled = false;
      try {
        for (;;) {
          const waitMs = deadline === undefined ? intervalMs : Math.min(intervalMs, deadline - Date.now());
          // Only a stalled wait listens for the operator's `retryStep`.
          const retriesBefore = stalls?.retryRequests() ?? 0;
          const retried = () => stalled && stalls !== undefined && stalls.retryRequests() !== retriesBefore;
          const woken = waitMs > 0 ? await condition(() => notified || retried(), waitMs, { summary: 'Wait for the provider\'s notification, then ask' }) : notified;
          const prompted = woken && notified;
          notified = false;
          const snapshot = await askProvider();
          progress.checks += 1;
          progress.status = snapshot.status;
          progress.refundedMinor = snapshot.refundedMinor;
          if (settled(snapshot.status)) {
            progress.source = prompted ? 'signal' : 'active_query';
            return snapshot;
          }
          if (deadline !== undefined && Date.now() >= deadline) return null;
          if (deadline === undefined && !stalled && Date.now() - startedAt >= stalledAfterMs && patched(STALLED_WAIT_PATCH)) {
            stalled = true;
            log.warn('The provider has not settled the payment in time; asking at most hourly now', { orderId, status: snapshot.status });
            stalls?.report({ what: 'payment', since: new Date(startedAt).toISOString() });
          }
          // A notification (or an operator's retry) that settled nothing does not slow the next ask.
          if (!woken) intervalMs = Math.min(intervalMs * 2, stalled ? STALLED_CHECK_INTERVAL_MS : maxPaymentCheckIntervalMs);
        }
      } finally {
        if (stalled) stalls?.report(null);
      }
    },
    answered(status) {
      progress.status = status;
      progress.source = 'provider_answer';
    },
  };
}
