// The one loop by which a workflow waits for the provider's decision on a payment or a refund.
// A notification only cuts the current wait short; the answer always comes from asking. Without
// notifications the loop still gets there, asking at doubling intervals. A wait with no deadline
// (money already moving) that outlasts `stalledAfterMs` has stalled: from then on it asks at most
// hourly, so the run's history lasts about a year, shows the stall to operators until it ends,
// and asks at once on the operator's `retryStep`.
import { condition, log, patched } from '@temporalio/workflow';
import { STALLED_WAIT_PATCH, type ProviderStalls } from './refused-steps.ts';

/**
 * How far apart a stalled wait asks (it still doubles up to this): about 11 history events an
 * hour, so a run waits well over a year before it reaches Temporal's history limit.
 */
export const STALLED_CHECK_INTERVAL_MS = 60 * 60_000;

/** Whether a notification arrived since the last ask; the signal handler sets it, the loop clears it. */
export interface Notifications {
  pending: boolean;
}

export interface ProviderWait<T> {
  /** What is being settled, for the stall shown to operators: 'payment', 'refund'. */
  what: string;
  notifications: Notifications;
  firstIntervalMs: number;
  maxIntervalMs: number;
  /** Past this (workflow time since the wait began) a wait without a deadline has stalled. */
  stalledAfterMs: number;
  /** Workflow time (ms) after which the wait gives up with null; omit to wait until settled. */
  deadline?: number;
  stalls?: ProviderStalls;
  ask(): Promise<T>;
  settled(answer: T): boolean;
  /** Fields for the stall's log line. */
  logFields(answer: T): Record<string, unknown>;
}

/** The answer that settled it and whether a notification prompted that ask; null if the deadline came first. */
export async function askUntilSettled<T>(wait: ProviderWait<T>): Promise<{ answer: T; prompted: boolean } | null> {
  const { notifications, stalls, deadline } = wait;
  let intervalMs = wait.firstIntervalMs;
  const startedAt = Date.now();
  let stalled = false;
  try {
    for (;;) {
      const waitMs = deadline === undefined ? intervalMs : Math.min(intervalMs, deadline - Date.now());
      // Only a stalled wait listens for the operator's `retryStep`.
      const retriesBefore = stalls?.retryRequests() ?? 0;
      const retried = () => stalled && stalls !== undefined && stalls.retryRequests() !== retriesBefore;
      const woken =
        waitMs > 0
          ? await condition(() => notifications.pending || retried(), waitMs, { summary: 'Wait for the provider\'s notification, then ask' })
          : notifications.pending;
      const prompted = woken && notifications.pending;
      notifications.pending = false;
      const answer = await wait.ask();
      if (wait.settled(answer)) return { answer, prompted };
      if (deadline !== undefined && Date.now() >= deadline) return null;
      if (deadline === undefined && !stalled && Date.now() - startedAt >= wait.stalledAfterMs && patched(STALLED_WAIT_PATCH)) {
        stalled = true;
        log.warn(`The provider has not settled the ${wait.what} in time; asking at most hourly now`, wait.logFields(answer));
        stalls?.report({ what: wait.what, since: new Date(startedAt).toISOString() });
      }
      // A notification (or an operator's retry) that settled nothing does not slow the next ask.
      if (!woken) intervalMs = Math.min(intervalMs * 2, stalled ? STALLED_CHECK_INTERVAL_MS : wait.maxIntervalMs);
    }
  } finally {
    if (stalled) stalls?.report(null);
  }
}
