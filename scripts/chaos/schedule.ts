// When each fault happens, as offsets into the load phase, scaled to its length: printed before
// the run starts, then carried out (each entry logged with the time it actually ran). Worker
// kills repeat a fifth of the phase (10 to 30 s) after each new worker is ready; the dev server
// goes down once. On a slow machine little may have happened by the end of the phase, so the
// faults stay on until a third of the checkouts have ended, for at most as long again.
import { FaultControl, SERVICE_FAULTS, WEBHOOK_CHAOS } from './faults.ts';
import type { ChaosStack } from './stack.ts';

export interface FaultEntry {
  atMs: number;
  what: string;
  run(): Promise<string | void>;
}

export interface FaultCounts {
  workerKills: number;
  devServerRestarts: number;
  connectionsTerminated: number;
  terminations: number;
  failedEntries: number;
}

export const DEV_SERVER_DOWN_MS = 5_000;
/** The fraction of the load phase during which the provider approves late; the plan aims cancels at it. */
export const PAID_AFTER_TIMEOUT_WINDOW = [0.25, 0.42] as const;
/** From here until the faults are off, the provider refuses every refund. */
export const REJECT_REFUNDS_FROM = 0.45;

export interface LoadProgress {
  checkoutsPlanned: number;
  checkoutsEnded(): number;
}

export function buildSchedule(
  loadMs: number,
  stack: ChaosStack,
  faults: FaultControl,
  counts: FaultCounts,
  progress: LoadProgress,
  log: (message: string) => void,
): FaultEntry[] {
  const at = (fraction: number) => Math.round(loadMs * fraction);
  const entries: FaultEntry[] = [
    {
      atMs: 0,
      what: `service faults on every service: errorRate ${SERVICE_FAULTS.errorRate}, hang after commit ${SERVICE_FAULTS.hangAfterMs / 1000} s at rate ${SERVICE_FAULTS.hangRate}`,
      run: () => faults.serviceFaults(true),
    },
    {
      atMs: 0,
      what: `webhook chaos: duplicates ${WEBHOOK_CHAOS.duplicateRate}, reordered, drops ${WEBHOOK_CHAOS.dropRate}, ${WEBHOOK_CHAOS.deliveryDelayMs} ms late`,
      run: () => faults.pspChaos(WEBHOOK_CHAOS),
    },
    {
      atMs: at(PAID_AFTER_TIMEOUT_WINDOW[0]),
      what: 'provider: paid after timeout on (voids refused while deciding, approvals come late)',
      run: () => faults.pspChaos({ paidAfterTimeout: true }),
    },
    { atMs: at(PAID_AFTER_TIMEOUT_WINDOW[1]), what: 'provider: paid after timeout off', run: () => faults.pspChaos({ paidAfterTimeout: false }) },
    { atMs: at(REJECT_REFUNDS_FROM), what: 'provider: refuses every refund, until the faults are off', run: () => faults.pspChaos({ rejectRefunds: true }) },
    {
      atMs: at(0.6),
      what: `Temporal dev server stopped, ${DEV_SERVER_DOWN_MS / 1000} s down, started again (state file kept)`,
      run: async () => {
        await stack.restartDevServer(DEV_SERVER_DOWN_MS);
        counts.devServerRestarts += 1;
      },
    },
  ];
  for (const fraction of [0.2, 0.5, 0.8]) {
    entries.push({
      atMs: at(fraction),
      what: "pg_terminate_backend on the services' connections",
      run: async () => {
        const cut = await stack.terminateServiceConnections();
        counts.connectionsTerminated += cut;
        counts.terminations += 1;
        return `${cut} connections cut`;
      },
    });
  }
  // A worker takes a while to start (it bundles the workflows), and longer still on a busy machine,
  // where it then has to catch up on every run's backlog: each new worker is given some time up, at
  // least twice as long as it took to start, before it is killed, so the runs make progress between
  // the crashes.
  const uptimeMs = Math.min(30_000, Math.max(10_000, loadMs / 5));
  entries.push({
    atMs: Math.round(uptimeMs / 2),
    what: `worker SIGKILL, a new worker started; again ${uptimeMs / 1000} s (or twice its start time) after each new worker is ready, while the faults are on`,
    run: async () => {
      while (faults.active) {
        const began = Date.now();
        await stack.killWorker();
        counts.workerKills += 1;
        const startMs = Date.now() - began;
        log(`worker killed (${counts.workerKills}), new worker ready after ${(startMs / 1000).toFixed(1)} s`);
        const upUntil = Date.now() + Math.max(uptimeMs, 2 * startMs);
        while (faults.active && Date.now() < upUntil) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      return `${counts.workerKills} kills`;
    },
  });
  const enough = Math.ceil(progress.checkoutsPlanned / 3);
  entries.push({
    atMs: loadMs,
    what: `all faults off: services healthy, provider calm (once ${enough} checkouts have ended, at the latest t+${(2 * loadMs) / 1000} s)`,
    run: async () => {
      const latest = Date.now() + loadMs;
      while (progress.checkoutsEnded() < enough && Date.now() < latest) await new Promise((resolve) => setTimeout(resolve, 1_000));
      await faults.calm();
      return `${progress.checkoutsEnded()} checkouts had ended`;
    },
  });
  return entries.sort((a, b) => a.atMs - b.atMs);
}

export function describeSchedule(entries: FaultEntry[]): string[] {
  return entries.map((e) => `  t+${(e.atMs / 1000).toFixed(1).padStart(5)} s  ${e.what}`);
}

/** Runs every entry at its time (entries overlap: a dev server restart does not hold up a worker kill). */
export async function runSchedule(entries: FaultEntry[], startedAt: number, log: (message: string) => void, counts: FaultCounts): Promise<void> {
  await Promise.all(
    entries.map(async (entry) => {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + entry.atMs - Date.now())));
      const began = `t+${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
      log(`fault ${began}: ${entry.what}`);
      const t0 = Date.now();
      try {
        const note = await entry.run();
        const took = Date.now() - t0;
        if (note || took > 1_000) log(`fault ${began} done after ${(took / 1000).toFixed(1)} s${note ? `: ${note}` : ''}`);
      } catch (err) {
        counts.failedEntries += 1;
        log(`fault ${began} FAILED: ${entry.what}: ${(err as Error).message}`);
      }
    }),
  );
}
