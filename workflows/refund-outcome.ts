// How a refund learns what the provider decided: as for payments (payment-outcome.ts), the
// provider's notification (a webhook the API turns into a `refundEvent` signal) only cuts the
// current wait short; the decision always comes from asking the payments service, which asks
// the provider. Without notifications the refund still gets there, asking at growing intervals.
import { condition, log, setHandler } from '@temporalio/workflow';
import type { ProviderRefund } from '../activities/refunds.ts';
import { refundEventSignal } from '../shared/refunds.ts';

const FIRST_CHECK_MS = 3_000;
const MAX_CHECK_INTERVAL_MS = 60_000;

export interface RefundOutcomes {
  /** Asks until the provider has decided (anything but PENDING); no deadline: the money is moving. */
  decided(): Promise<ProviderRefund>;
}

/** Listens for this refund's notifications; call once, at the start of the workflow. */
export function refundOutcomes(refundId: string, askProvider: () => Promise<ProviderRefund>): RefundOutcomes {
  const seen = new Set<string>();
  let notified = false;
  setHandler(refundEventSignal, (event) => {
    if (event.refundId !== refundId) {
      log.warn('Refund notification for another refund ignored', { eventId: event.eventId, refundId: event.refundId });
      return;
    }
    if (seen.has(event.eventId)) return; // a redelivery: it already prompted a check
    seen.add(event.eventId);
    notified = true;
  });
  return {
    async decided() {
      let intervalMs = FIRST_CHECK_MS;
      for (;;) {
        const prompted = await condition(() => notified, intervalMs, { summary: 'Wait for the provider\'s notification, then ask' });
        notified = false;
        const answer = await askProvider();
        if (answer.status !== 'PENDING') return answer;
        // A notification that settled nothing (duplicate, stale) does not slow the next ask.
        if (!prompted) intervalMs = Math.min(intervalMs * 2, MAX_CHECK_INTERVAL_MS);
      }
    },
  };
}
