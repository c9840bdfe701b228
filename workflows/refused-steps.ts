// Steps that must not give up (capture, fulfilment, compensation, a refund's effects). Their
// retry policy already retries infrastructure failures forever; a refusal (say, a compensation
// the service rejects) will not heal by itself, so the run keeps it visible — NeedsAttention,
// the current details — and tries again on a slow durable timer until an operator has fixed the
// cause. The operator's `retryStep` signal ends the wait at once instead of up to an hour later.
// A wait on the provider that has lasted too long (payment-outcome.ts, refund-outcome.ts) shows
// the same way until the provider settles, and `retryStep` makes it ask the provider now.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  patched,
} from '@temporalio/workflow';
import { retryStepSignal, retryStepUpdate } from '../shared/operations.ts';
import type { OperatorActions } from './operator-actions.ts';

/**
 * Guards commands added for operator visibility (issue 6) where runs recorded before had none:
 * those runs replay without them, new runs record a marker and get them.
 */
export const OPERATOR_VISIBILITY_PATCH = 'operator-visibility';
/**
 * Guards a provider wait's turn to stalled (slower timers, the stall shown): a run already waiting
 * when this came in replays its recorded checks without it, then stalls at its next new check.
 */
export const STALLED_WAIT_PATCH = 'stalled-provider-wait';

/** A step a service refused, now waiting on its slow timer (or being tried again after it). */
export interface StepRefusal {
  step: string;
  why: string;
  waitMinutes: number;
}

/** A wait on the provider that has lasted past its threshold: the provider has not settled `what` since `since`. */
export interface ProviderStall {
  /** What is waited for, e.g. `payment` or `refund`. */
  what: string;
  /** When the wait began (ISO 8601). */
  since: string;
}

/** What a wait on the provider reports to the run (payment-outcome.ts, refund-outcome.ts). */
export interface ProviderStalls {
  /** The wait has stalled (shown until `report(null)`), or it is over. */
  report(stall: ProviderStall | null): void;
  /** Counts the operator's `retryStep` requests: a stalled wait asks the provider at once when it changes. */
  retryRequests(): number;
}

export interface RefusedSteps {
  /** Runs `run` until it succeeds; a refusal is retried on a slow timer that `retryStep` cuts short. */
  persist<T>(step: string, run: () => Promise<T>): Promise<T>;
  /** The refused steps not yet through, oldest first (several can wait at once during compensation). */
  refused(): readonly StepRefusal[];
  /** The wait on the provider that has stalled, if any. */
  stalled(): ProviderStall | null;
  /** Hand to the provider wait, so a stall shows and `retryStep` reaches it. */
  stalls: ProviderStalls;
}

/**
 * Declares the `retryStep` action (signal and Update, among the run's `actions`) and returns the
 * workflow's `persist`. `changed` runs when a step is refused, when a refused step finally goes
 * through, and when a provider wait stalls or ends; `upsert` is false when replaying a run
 * recorded before its search attributes followed these changes (then only the details may move).
 */
export function refusedSteps(changed: (options: { upsert: boolean }) => void, actions: OperatorActions): RefusedSteps {
  const refused: StepRefusal[] = [];
  let stall: ProviderStall | null = null;
  let retryRequests = 0;
  actions.accept({
    signal: retryStepSignal,
    update: retryStepUpdate,
    check: () => (refused.length === 0 && stall === null ? { code: 'no_step_waiting', message: 'no refused step or stalled provider wait is waiting' } : null),
    apply: ({ by, reason }) => {
      log.info('retryStep: trying again now', { by, reason, steps: refused.map((r) => r.step), stalled: stall?.what });
      retryRequests += 1;
    },
  });
  const announce = () => changed({ upsert: patched(OPERATOR_VISIBILITY_PATCH) });

  async function persist<T>(step: string, run: () => Promise<T>): Promise<T> {
    let refusal: StepRefusal | undefined;
    try {
      for (let round = 0; ; round++) {
        try {
          return await run();
        } catch (err) {
          if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
          const waitMinutes = Math.min(2 ** round, 60);
          const why = describeRefusal(err);
          log.error(`${step} refused; retrying in ${waitMinutes} min`, { error: why });
          if (refusal === undefined) refused.push((refusal = { step, why, waitMinutes }));
          else Object.assign(refusal, { why, waitMinutes });
          announce();
          const requestsBefore = retryRequests;
          await condition(() => retryRequests !== requestsBefore, `${waitMinutes} minutes`, {
            summary: `Retry "${step}" (refused: ${why})`,
          });
        }
      }
    } finally {
      if (refusal !== undefined) {
        refused.splice(refused.indexOf(refusal), 1);
        announce();
      }
    }
  }
  const stalls: ProviderStalls = {
    report(next) {
      stall = next;
      announce();
    },
    retryRequests: () => retryRequests,
  };
  return { persist, refused: () => refused, stalled: () => stall, stalls };
}

/** The stall as the current details show it (empty when there is none). */
export function describeStall(stall: ProviderStall | null): string {
  return stall === null ? '' : ` · the provider has not settled the ${stall.what} since ${stall.since}; asking at most hourly — needs an operator (retryStep asks now)`;
}

function describeRefusal(err: ActivityFailure): string {
  const cause = err.cause;
  return cause instanceof ApplicationFailure ? `${cause.type}: ${cause.message}` : (cause?.message ?? err.message);
}
