// `npm run chaos -- [--checkouts 60] [--refunds 15] [--issuances 30] [--load-seconds 60] [--seed 1]
//                   [--settle-seconds 240] [--keep-logs]`
//
// Starts a stack of its own (fresh database, Temporal dev server with a state file, services,
// worker and API as child processes), drives checkouts, refunds and coupon issuances through
// the API while it injects faults on a schedule it prints first (service errors and hangs,
// webhook chaos, late payments, refused refunds, worker SIGKILLs, a dev server restart, cut
// database connections), then turns the faults off, reconciles once, waits for every run to
// finish or to wait for a person, and checks the invariants. Exit status 1 on any violation
// (or if the run could not be carried out). Everything it started is stopped and its database
// dropped on the way out, whatever happened.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ChaosApi } from './chaos/api.ts';
import { FaultControl } from './chaos/faults.ts';
import { createCampaign, makePlan, placeFixtures } from './chaos/fixtures.ts';
import { checkInvariants } from './chaos/invariants.ts';
import { startLoad } from './chaos/load.ts';
import { apiAnsweredNo500, summaryLines } from './chaos/report.ts';
import { buildSchedule, describeSchedule, runSchedule, type FaultCounts } from './chaos/schedule.ts';
import { resolveRefusedRefunds, runReconciliation, waitUntilSettled } from './chaos/settle.ts';
import { ChaosStack } from './chaos/stack.ts';

const { values } = parseArgs({
  options: {
    checkouts: { type: 'string', default: '60' },
    refunds: { type: 'string', default: '15' },
    issuances: { type: 'string', default: '30' },
    'load-seconds': { type: 'string', default: '60' },
    'settle-seconds': { type: 'string', default: '240' },
    seed: { type: 'string', default: '1' },
    'keep-logs': { type: 'boolean', default: false },
  },
});
const number = (name: keyof typeof values, min: number) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < min) {
    console.error(`chaos: --${name} must be an integer ≥ ${min}, got "${values[name]}"`);
    process.exit(2);
  }
  return value;
};
const options = {
  checkouts: number('checkouts', 1),
  refunds: number('refunds', 0),
  issuances: number('issuances', 0),
  loadMs: number('load-seconds', 10) * 1000,
  settleMs: number('settle-seconds', 30) * 1000,
  seed: number('seed', 0),
};

const startedAt = Date.now();
const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s`;
const log = (message: string) => console.log(`[${elapsed()}] ${message}`);

const stack = new ChaosStack({ pspTimeoutCardMs: 2_000, log });
let cleaning: Promise<void> | undefined;
const cleanUp = (keepLogs: boolean) => (cleaning ??= stack.stop({ keepLogs }));
const abort = (why: string, code: number) => {
  // Once the run is being cleaned up, a call still in flight may fail on its closed connection: that changes nothing.
  if (cleaning) {
    log(`ignored while cleaning up: ${why.split('\n')[0]}`);
    return;
  }
  log(`${why}: stopping everything the run started`);
  void cleanUp(true).finally(() => {
    log(`stopped; logs kept in ${stack.workDir}`);
    process.exit(code);
  });
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => abort(signal, 130));
process.on('uncaughtException', (err) => abort(`unexpected error: ${err.stack ?? err}`, 1));
process.on('unhandledRejection', (err) => abort(`unexpected error: ${(err as Error)?.stack ?? err}`, 1));
// whatever else happens, no child outlives the harness
process.once('exit', () => stack.killEverythingNow());

async function main(): Promise<boolean> {
  const cpus = os.cpus();
  const loadAverage = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`chaos run, ${new Date().toISOString()}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}, load average ${loadAverage}, Node ${process.version}`);
  console.log(`plan: ${options.checkouts} checkouts, ${options.refunds} refunds, ${options.issuances} coupon issuances over ${options.loadMs / 1000} s of faults, seed ${options.seed}`);
  const plan = makePlan(options, options.seed);

  await stack.start();
  const initialStock = await placeFixtures(stack.db, plan);
  await createCampaign(stack.serviceUrls.coupons, stack.authHeader('coupons'), plan.campaignQuota);
  const faults = new FaultControl(stack.serviceUrls, (service) => stack.authHeader(service));
  await faults.calm();
  const api = new ChaosApi(stack.apiUrl, (role, subject) => stack.tokenFor(role, subject));
  log(`stack up (API ${stack.apiUrl}, Temporal ${stack.temporalAddress}, logs in ${stack.workDir}); campaign quota ${plan.campaignQuota}`);

  const faultCounts: FaultCounts = { workerKills: 0, devServerRestarts: 0, connectionsTerminated: 0, terminations: 0, failedEntries: 0 };
  const loadStart = Date.now() + 1_000;
  const deadline = loadStart + 2 * options.loadMs + options.settleMs;
  const load = startLoad({
    plan, api, client: stack.client, loadStart, loadMs: options.loadMs, deadline, log,
    providerRefusing: () => faults.rejectingRefunds,
  });
  const progress = { checkoutsPlanned: plan.checkouts.length, checkoutsEnded: load.checkoutsEnded };
  const schedule = buildSchedule(options.loadMs, stack, faults, faultCounts, progress, log);
  console.log('fault schedule (from the start of the load):');
  for (const line of describeSchedule(schedule)) console.log(line);
  const faultsDone = runSchedule(schedule, loadStart, log, faultCounts);
  await faultsDone;
  log('faults off; waiting for the checkouts, refunds and issuances to end');
  await load.ended;
  log('drivers done; reconciling once');
  const reconciliation = await runReconciliation(api, stack.client, stack.db, 90_000);
  log(`reconciliation ${reconciliation.workflowId ?? ''}: ${reconciliation.report}`);
  for (const mismatch of reconciliation.open) log(`  left for an operator: ${mismatch}`);

  const retried = new Map<string, number>();
  const busy = await waitUntilSettled(stack.client, Math.max(deadline - Date.now(), 30_000), log, () => resolveRefusedRefunds(api, stack.client, retried));
  if (busy.length > 0) log(`gave up waiting: ${busy.length} runs still busy (listed as violations below)`);
  else log('every run finished or waits for a person');

  const results = await checkInvariants({ db: stack.db, client: stack.client, initialStock, issuances: load.tallies.issuances.results, crashes: stack.crashes });
  results.push(await apiAnsweredNo500(stack.apiUrl));
  const summary = await summaryLines({
    db: stack.db, serviceUrls: stack.serviceUrls, apiUrl: stack.apiUrl, faults: faultCounts, workerStarts: stack.workerStarts,
    apiRetries: api.retries, tallies: load.tallies, operatorRetries: retried, results,
  });
  for (const line of summary) console.log(line);
  const violations = results.reduce((sum, r) => sum + r.violations.length, 0);
  console.log('');
  console.log(`chaos run ${violations === 0 ? 'PASSED' : 'FAILED'}: ${violations} violations, ${elapsed().trim()}`);
  return violations === 0;
}

let ok = false;
try {
  ok = await main();
} catch (err) {
  log(`chaos run could not be completed: ${(err as Error).stack ?? err}`);
}
const keepLogs = values['keep-logs'] || !ok;
if (keepLogs) log(`logs kept in ${stack.workDir}`);
await cleanUp(keepLogs);
process.exit(ok ? 0 : 1);
