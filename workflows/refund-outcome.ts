// How a refund learns what the provider decided: as for payments (payment-outcome.ts), the
// provider's notification (a webhook the API turns into a `refundEvent` signal) only cuts the
// current wait short; the decision always comes from asking the payments service, which asks
// the provider. Without notifications the refund still gets there, asking at growing intervals
// (provider-wait.ts). A refund still pending after an hour has stalled.
import { log, setHandler } from '@temporalio/workflow';
import type { ProviderRefund } from '../activities/refunds.ts';
import { refundEventSignal } from '../shared/refunds.ts';
import { askUntilSettled, type Notifications } from './provider-wait.ts';
import type { ProviderStalls } from './refused-steps.ts';

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
  const notifications: Notifications = { pending: false };
  setHandler(refundEventSignal, (event) => {
    if (event.refundId !== refundId) {
      log.warn('Refund notification for another refund ignored', { eventId: event.eventId, refundId: event.refundId });
      return;
    }
    if (seen.has(event.eventId)) return; // a redelivery: it already prompted a check
    seen.add(event.eventId);
    notifications.pending = true;
  });
  return {
    async decided() {
      const settledBy = await askUntilSettled({
        what: 'refund',
        notifications,
        firstIntervalMs: FIRST_CHECK_MS,
        maxIntervalMs: MAX_CHECK_INTERVAL_MS,
        stalledAfterMs: REFUND_STALLED_AFTER_MS,
        stalls,
        ask: askProvider,
        settled: (answer) => answer.status !== 'PENDING',
        logFields: () => ({ refundId }),
      });
      return settledBy!.answer; // no deadline: it only returns once settled
    },
  };
}
