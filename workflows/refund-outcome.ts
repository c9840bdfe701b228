// How a refund learns what the provider decided: as for payments (payment-outcome.ts), the
// provider's notification (a webhook the API turns into a `refundEvent` signal) only cuts the
// current wait short; the decision always comes from asking the payments service, which asks
// the provider. Without notifications the refund still gets there, asking at growing intervals.
// A refund still pending after an hour has stalled: as a stalled payment, it asks at most hourly
// from then on and shows the stall to operators until the provider decides.
import { condition, log, patched, setHandler } from '@temporalio/workflow';
import type { ProviderRefund } from '../activities/refunds.ts';
import { refundEventSignal } from '../shared/refunds.ts';
import { STALLED_CHECK_INTERVAL_MS } from './payment-outcome.ts';
import { STALLED_WAIT_PATCH, type ProviderStalls } from './refused-steps.ts';

const FIRST_CHECK_MS = 3_000;
const MAX_CHECK_INTERVAL_MS = 60_000;
/** A refund takes longer to decide than a card payment; nobody waits at a till for it. */
export const REFUND_STALLED_AFTER_MS = 60 * 60_000;

export interface RefundOutcomes {
  /**
   * Asks until the provider has decided (anything but PENDING); no deadline: the money is moving.
   * Past REFUND_STALLED_AFTER_MS it has stalled, and `retryStep` makes it ask at once.
   */
  decided(): Promise<ProviderRefund>;
}

/** Listens for this refund's notifications; call once, at the start of the workflow. */
export function refundOutcomes(refundId: string, askProvider: () => Promise<ProviderRefund>, stalls?: ProviderStalls): RefundOutcomes {
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
      const startedAt = Date.now();
      let stalled = false;
      try {
        for (;;) {
          // Only a stalled wait listens for the operator's `retryStep`.
          const retriesBefore = stalls?.retryRequests() ?? 0;
          const retried = () => stalled && stalls !== undefined && stalls.retryRequests() !== retriesBefore;
          const woken = await condition(() => notified || retried(), intervalMs, { summary: 'Wait for the provider\'s notification, then ask' });
          notified = false;
          const answer = await askProvider();
          if (answer.status !== 'PENDING') return answer;
          if (!stalled && Date.now() - startedAt >= REFUND_STALLED_AFTER_MS && patched(STALLED_WAIT_PATCH)) {
            stalled = true;
            log.warn('The provider has not decided the refund in time; asking at most hourly now', { refundId });
            stalls?.report({ what: 'refund', since: new Date(startedAt).toISOString() });
          }
          // A notification (or an operator's retry) that settled nothing does not slow the next ask.
          if (!woken) intervalMs = Math.min(intervalMs * 2, stalled ? STALLED_CHECK_INTERVAL_MS : MAX_CHECK_INTERVAL_MS);
        }
      } finally {
        if (stalled) stalls?.report(null);
      }
    },
  };
}
