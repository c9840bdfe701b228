// After the faults: reconciliation runs once (started through the API, as an operator would),
// then the harness waits until every run has finished or says it waits for a person
// (NeedsAttention = true). Every wait is bounded and says what it was still waiting for.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Db } from '../../lib/db.ts';
import { NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { ChaosApi, errorCode, sleep } from './api.ts';
import { resolveRefusedRefund } from './refunds.ts';

export interface ReconciliationOutcome {
  workflowId: string | null;
  finished: boolean;
  report: string;
  /** The differences left for an operator, one line each. */
  open: string[];
}

export async function runReconciliation(api: ChaosApi, client: Client, db: Db, timeoutMs: number): Promise<ReconciliationOutcome> {
  const started = await api.call('POST', '/reconciliation/run', ['operations', 'ops-chaos'], { body: { boundaryGraceMs: 0 } });
  if (started.status !== 202) {
    return { workflowId: null, finished: false, report: `could not start: ${started.status} ${errorCode(started) ?? JSON.stringify(started.body)}`, open: [] };
  }
  const workflowId: string = started.body.workflowId;
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + timeoutMs;
  const ending = await client.connection.withDeadline(deadline, () => handle.result()).then(
    () => 'completed',
    (err: Error) => (Date.now() >= deadline ? `still running after ${timeoutMs / 1000} s` : `ended without a result (${err.message})`),
  );
  const finished = ending === 'completed';
  const [run] = await db.$queryRaw<{ examined: number; deferred: number; detected: number; autoResolved: number; flagged: number }[]>`
    SELECT examined, deferred, detected, auto_resolved AS "autoResolved", flagged
      FROM reconciliation_runs WHERE workflow_id = ${workflowId} ORDER BY started_at DESC LIMIT 1`;
  const report = run
    ? `examined ${run.examined}, deferred ${run.deferred}, differences ${run.detected}, fixed automatically ${run.autoResolved}, flagged for an operator ${run.flagged}`
    : 'no report written';
  const open = await db.$queryRaw<{ id: string; summary: string | null }[]>`
    SELECT id, details->>'summary' AS summary FROM reconciliation_mismatches WHERE status::text = 'OPEN' ORDER BY id`;
  return {
    workflowId,
    finished,
    report: finished ? report : `${ending}; ${report}`,
    open: open.map((m) => `${m.id}: ${m.summary ?? 'no summary'}`),
  };
}

/** Open runs that neither finished nor say they wait for a person. */
export async function busyRuns(client: Client): Promise<WorkflowExecutionInfo[]> {
  const busy: WorkflowExecutionInfo[] = [];
  for await (const run of client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
    if (run.typedSearchAttributes.get(NeedsAttentionKey) !== true) busy.push(run);
  }
  return busy;
}

/**
 * The operator's round: refunds the provider refused that nobody in the harness owns (a
 * cancelled checkout's, a reconciliation fix) are retried now that the provider is calm (and
 * abandoned if even that is refused), each at most `maxRounds` times. Returns how many it acted on.
 */
export async function resolveRefusedRefunds(api: ChaosApi, client: Client, tried: Map<string, number>, maxRounds = 3): Promise<number> {
  let acted = 0;
  for await (const run of client.workflow.list({ query: 'WorkflowType = "refund" AND ExecutionStatus = "Running" AND FlowStatus = "NEEDS_OPERATOR"' })) {
    const count = tried.get(run.workflowId) ?? 0;
    if (count >= maxRounds) continue;
    tried.set(run.workflowId, count + 1);
    if (await resolveRefusedRefund(api, client, run.workflowId, 'retry', Date.now() + 60_000)) acted += 1;
  }
  return acted;
}

/**
 * Waits until no run is busy, doing the operator's round each time; returns the runs still busy
 * at the deadline (empty when settled).
 */
export async function waitUntilSettled(
  client: Client,
  timeoutMs: number,
  log: (message: string) => void,
  operatorRound: () => Promise<number>,
): Promise<WorkflowExecutionInfo[]> {
  const deadline = Date.now() + timeoutMs;
  let lastReport = 0;
  for (;;) {
    let busy: WorkflowExecutionInfo[];
    let acted = 0;
    try {
      acted = await operatorRound();
      busy = await busyRuns(client);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      log(`listing runs failed (${(err as Error).message}); trying again`);
      await sleep(2_000);
      continue;
    }
    if ((busy.length === 0 && acted === 0) || Date.now() > deadline) return busy;
    if (busy.length > 0 && Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      log(`waiting for ${busy.length} runs to finish: ${busy.slice(0, 5).map((r) => r.workflowId).join(', ')}${busy.length > 5 ? ', …' : ''}`);
    }
    await sleep(2_000);
  }
}
