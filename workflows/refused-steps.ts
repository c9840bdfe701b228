// Steps that must not give up (capture, fulfilment, compensation, a refund's effects). A refusal
// (say, a compensation the service rejects) will not heal by itself, and a service down for hours
// must not go unseen either: their retry policy gives up after a bounded number of attempts
// (`untilStuck`), and either way the run keeps the step visible — NeedsAttention, the current
// details naming the step and the service's last answer — and tries again on a slow durable timer
// until the service is back or an operator has fixed the cause. The operator's `retryStep` signal
// ends the wait at once instead of up to an hour later.
// A wait on the provider that has lasted too long (payment-outcome.ts, refund-outcome.ts) shows
// the same way until the provider settles, and `retryStep` makes it ask the provider now.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  patched,
  type ActivityOptions,
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
/**
 * Guards the bound on the retries of a step that must not give up (issue 12): runs recorded before
 * scheduled such steps retrying without a limit and replay so; a new step records this marker first.
 */
export const STUCK_STEP_PATCH = 'stuck-step-visible';

/**
 * Attempts before a step that keeps failing for a retryable reason (a service down, timing out)
 * turns into the visible slow retry. With the "until done" backoff (1 s doubling to 1 min) that is
 * about 4 minutes (up to 7 if every call hangs until its timeout): a restart or a deploy heals
 * unseen, an outage shows within minutes.
 */
export const STUCK_AFTER_ATTEMPTS = 10;

/**
 * `options` (an "until done" preset) with its attempts bounded, for a step run under `persist` or
 * `outlast`: an activity that gives up anywhere else would fail the workflow. Runs recorded before
 * the bound keep the unbounded policy (STUCK_STEP_PATCH).
 */
export function untilStuck(options: ActivityOptions): ActivityOptions {
  if (!patched(STUCK_STEP_PATCH)) return options;
  return { ...options, retry: { ...options.retry, maximumAttempts: STUCK_AFTER_ATTEMPTS } };
}

/** A step a service refused or that stayed unavailable, now waiting on its slow timer (or being tried again after it). */
export interface StepRefusal {
  step: string;
  /** `refused`: a business refusal; `unavailable`: it failed for a retryable reason STUCK_AFTER_ATTEMPTS times. */
  kind: 'refused' | 'unavailable';
  /** The failure's type and message; a service's names the service (activities/http.ts). */
  why: string;
  waitMinutes: number;
}

/** A wait on something outside the run that has lasted past its threshold: `waitsFor` has not settled `what` since `since`. */
export interface ProviderStall {
  /** What is waited for, e.g. `payment` or `refund`. */
  what: string;
  /** Who is to settle it; the provider when absent. */
  waitsFor?: string;
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
  /**
   * Runs `run` until it succeeds; a refusal, or a retryable failure that outlasted the activity's
   * attempts, is retried on a slow timer that `retryStep` cuts short.
   */
  persist<T>(step: string, run: () => Promise<T>): Promise<T>;
  /**
   * Like `persist`, but a refusal is thrown to the caller (the capture's is compensated): only a
   * step that stays unavailable waits on the slow timer.
   */
  outlast<T>(step: string, run: () => Promise<T>): Promise<T>;
  /** The refused or unavailable steps not yet through, oldest first (several can wait at once during compensation). */
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

  async function retrySlowly<T>(step: string, run: () => Promise<T>, refusalsToo: boolean): Promise<T> {
    let refusal: StepRefusal | undefined;
    try {
      for (let round = 0; ; round++) {
        try {
          return await run();
        } catch (err) {
          if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
          const kind = isRefusal(err) ? 'refused' : 'unavailable';
          if (kind === 'refused' && !refusalsToo) throw err;
          // An outage that spent the step's bounded attempts waits like a refusal: it shows, and an
          // operator can try it again at once when the service is back.
          const waitMinutes = Math.min(2 ** round, 60);
          const why = describeFailure(err);
          log.error(`${step} ${kind}; retrying in ${waitMinutes} min`, { error: why });
          if (refusal === undefined) refused.push((refusal = { step, kind, why, waitMinutes }));
          else Object.assign(refusal, { kind, why, waitMinutes });
          announce();
          const requestsBefore = retryRequests;
          await condition(() => retryRequests !== requestsBefore, `${waitMinutes} minutes`, {
            summary: `Retry "${step}" (${kind}: ${why})`,
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
  return {
    persist: (step, run) => retrySlowly(step, run, true),
    outlast: (step, run) => retrySlowly(step, run, false),
    refused: () => refused,
    stalled: () => stall,
    stalls,
  };
}

/** The waiting steps as the current details show them (empty when there is none). */
export function describeRefusals(refused: readonly StepRefusal[]): string {
  return refused
    .map(({ step, kind, why, waitMinutes }) =>
      kind === 'refused'
        ? ` · ${step} refused (${why}); retrying in ${waitMinutes} min — needs an operator`
        : ` · ${step} keeps failing (${why}); retrying in ${waitMinutes} min — needs an operator`,
    )
    .join('');
}

/** The stall as the current details show it (empty when there is none). */
export function describeStall(stall: ProviderStall | null): string {
  if (stall === null) return '';
  return ` · ${stall.waitsFor ?? 'the provider'} has not settled the ${stall.what} since ${stall.since}; asking at most hourly — needs an operator (retryStep asks now)`;
}

/** A business refusal (non-retryable), as opposed to attempts spent on an outage or a timeout. */
export function isRefusal(err: ActivityFailure): boolean {
  return err.cause instanceof ApplicationFailure && err.cause.nonRetryable === true;
}

function describeFailure(err: ActivityFailure): string {
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) return `${cause.type}: ${cause.message}`;
  // A timeout names no service: the activity then says what was called.
  return cause === undefined ? err.message : `${err.activityType}: ${cause.message}`;
}
