// Steps that must not give up (capture, fulfilment, compensation, a refund's effects). Their
// retry policy already retries infrastructure failures forever; a refusal (say, a compensation
// the service rejects) will not heal by itself, so the run keeps it visible — NeedsAttention,
// the current details — and tries again on a slow durable timer until an operator has fixed the
// cause. The operator's `retryStep` signal ends the wait at once instead of up to an hour later.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  patched,
  setHandler,
} from '@temporalio/workflow';
import { retryStepSignal } from '../shared/operations.ts';

/**
 * Guards commands added for operator visibility (issue 6) where runs recorded before had none:
 * those runs replay without them, new runs record a marker and get them.
 */
export const OPERATOR_VISIBILITY_PATCH = 'operator-visibility';

/** A step a service refused, now waiting on its slow timer (or being tried again after it). */
export interface StepRefusal {
  step: string;
  why: string;
  waitMinutes: number;
}

export interface RefusedSteps {
  /** Runs `run` until it succeeds; a refusal is retried on a slow timer that `retryStep` cuts short. */
  persist<T>(step: string, run: () => Promise<T>): Promise<T>;
  /** The refused steps not yet through, oldest first (several can wait at once during compensation). */
  refused(): readonly StepRefusal[];
}

/**
 * Registers the `retryStep` handler and returns the workflow's `persist`. `changed` runs when a
 * step is refused and when a refused step finally goes through; `upsert` is false when replaying
 * a run recorded before its search attributes followed these changes (then only the details may move).
 */
export function refusedSteps(changed: (options: { upsert: boolean }) => void): RefusedSteps {
  const refused: StepRefusal[] = [];
  let retryRequests = 0;
  setHandler(retryStepSignal, ({ by, reason }) => {
    if (refused.length === 0) {
      log.info('retryStep ignored: no refused step is waiting', { by, reason });
      return;
    }
    log.info('retryStep: trying the refused steps again now', { by, reason, steps: refused.map((r) => r.step) });
    retryRequests += 1;
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
  return { persist, refused: () => refused };
}

function describeRefusal(err: ActivityFailure): string {
  const cause = err.cause;
  return cause instanceof ApplicationFailure ? `${cause.type}: ${cause.message}` : (cause?.message ?? err.message);
}
