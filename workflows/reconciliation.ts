// Reconciliation, run by a Temporal Schedule: compare the provider's settlement report with
// our payments and orders over a period, record every difference, and settle what is safe to
// settle unattended — a capture whose checkout never heard of it is nudged through (the
// checkout completes the order), money held for a cancelled order is refunded by a Refund
// workflow started as a child (workflows/refund-child.ts). Everything else (amounts that
// differ, money without an order, a capture we record and the provider does not, a checkout
// that is gone, a refund still waiting for a decision) is handed to an operator: one
// `mismatchResolution` workflow per mismatch, which outlives this run and waits for the
// `resolve` decision. Running it again finds the same mismatches under the same ids and
// changes nothing; a refund's id derives from its mismatch, so it is never made twice.
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { RecordedMismatch, RunCounts } from '../activities/reconciliation.ts';
import {
  mismatchStartAttributes,
  mismatchSummary,
  mismatchWorkflowId,
  reconciliationProgressQuery,
  type ReconciliationProgress,
  type ReconciliationStep,
} from '../shared/reconciliation.ts';
import { FlowStatusKey, NeedsAttentionKey } from '../shared/search-attributes.ts';
import { carryOut, mismatchResolution, records, type MismatchResolutionInput } from './mismatch-resolution.ts';
import { OPERATOR_VISIBILITY_PATCH } from './refused-steps.ts';
import { classifyAll, reconciliationPeriod, type Mismatch, type ReconciliationInput } from './reconciliation-rules.ts';

export { mismatchResolution } from './mismatch-resolution.ts';
export type { ReconciliationInput } from './reconciliation-rules.ts';

export interface ReconciliationOptions extends ReconciliationInput {
  /** How long an automatic `complete-order` waits for the order to become PAID (default 60 s). */
  completionWaitMs?: number;
  /** How long an automatic `refund` waits for its Refund workflow (default 5 min); past that, an operator takes over. */
  refundWaitMs?: number;
}

/** Set by the Schedule on every workflow it starts: the action's nominal time. */
const ScheduledStartTimeKey = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

type Outcome = 'AUTO_RESOLVED' | 'FLAGGED' | 'ALREADY_KNOWN';

export interface ReconciliationReport extends RunCounts {
  runId: string;
  periodStart: string;
  periodEnd: string;
  mismatches: { id: string; kind: Mismatch['kind']; outcome: Outcome }[];
  deferredReferences: string[];
}

export async function reconciliation(options: ReconciliationOptions = {}): Promise<ReconciliationReport> {
  const info = workflowInfo();
  // A scheduled run has no arguments: its period ends at the Schedule's action time (or, started
  // by hand, at its own start). Both are fixed in history, so a replay derives the same period.
  const period = reconciliationPeriod(options, info.typedSearchAttributes.get(ScheduledStartTimeKey) ?? info.startTime);
  const runId = info.runId;
  const progress: ReconciliationProgress = { step: 'COLLECTING_FACTS', periodStart: period.start, periodEnd: period.end, examined: null, detected: null, settled: 0 };
  setHandler(reconciliationProgressQuery, () => progress);
  const enter = (step: ReconciliationStep) => {
    progress.step = step;
    const counts = progress.detected === null ? '' : ` · ${progress.examined} examined · ${progress.settled}/${progress.detected} mismatches settled`;
    setCurrentDetails(`**${step}** · ${period.start} – ${period.end}${counts}`);
  };
  enter('COLLECTING_FACTS');
  await records('Record the run').recordRunStarted({ runId, workflowId: info.workflowId, period });

  const facts = await records('Collect the settlement report, payments and orders').collectReconciliationFacts(period);
  const { mismatches, deferred } = classifyAll(facts, period);
  progress.examined = facts.length;
  progress.detected = mismatches.length;
  enter('RECORDING_MISMATCHES');
  const recorded = new Map((await records('Record the mismatches').recordMismatches({ runId, mismatches })).map((r) => [r.id, r]));

  enter('SETTLING');
  const outcomes = await Promise.all(
    mismatches.map(async (mismatch) => {
      const outcome = await settle(mismatch, recorded.get(mismatch.id)!, options);
      progress.settled += 1;
      enter('SETTLING');
      return { id: mismatch.id, kind: mismatch.kind, outcome };
    }),
  );
  const count = (outcome: Outcome) => outcomes.filter((o) => o.outcome === outcome).length;
  const counts: RunCounts = {
    examined: facts.length,
    deferred: deferred.length,
    detected: mismatches.length,
    newMismatches: [...recorded.values()].filter((r) => r.isNew).length,
    alreadyKnown: count('ALREADY_KNOWN'),
    autoResolved: count('AUTO_RESOLVED'),
    flagged: count('FLAGGED'),
  };
  await records('Record the run finished').recordRunFinished({ runId, counts, report: { mismatches: outcomes, deferredReferences: deferred } });
  log.info('Reconciliation finished', { ...counts });
  enter('FINISHED');
  // The run started RUNNING; runs recorded before this upsert existed replay without it.
  if (patched(OPERATOR_VISIBILITY_PATCH)) {
    upsertSearchAttributes([
      { key: FlowStatusKey, value: 'FINISHED' },
      { key: NeedsAttentionKey, value: false },
    ]);
  }
  return { runId, periodStart: period.start, periodEnd: period.end, ...counts, mismatches: outcomes, deferredReferences: deferred };
}

/** Settles a new mismatch by its rule if it has one, else hands it to an operator; a known one is left alone. */
async function settle(mismatch: Mismatch, recorded: RecordedMismatch, { completionWaitMs, refundWaitMs }: ReconciliationOptions): Promise<Outcome> {
  const input: MismatchResolutionInput = {
    mismatchId: mismatch.id,
    kind: mismatch.kind,
    reference: mismatch.reference,
    pspPaymentId: mismatch.pspPaymentId,
    summary: mismatch.summary,
    ...(completionWaitMs === undefined ? {} : { completionWaitMs }),
    ...(refundWaitMs === undefined ? {} : { refundWaitMs }),
  };
  if (!recorded.isNew) {
    // Already with an operator: make sure its workflow exists (idempotent), change nothing else.
    if (recorded.status === 'OPEN') await awaitOperator(input);
    return 'ALREADY_KNOWN';
  }
  if (mismatch.autoAction) {
    const failure = await carryOut(mismatch.autoAction, input, { by: 'reconciliation', note: mismatch.summary, attempt: 'auto' });
    if (failure === null) {
      await records('Mark the mismatch resolved automatically').markMismatch({ id: mismatch.id, status: 'AUTO_RESOLVED', action: mismatch.autoAction, by: 'reconciliation', note: mismatch.summary });
      return 'AUTO_RESOLVED';
    }
    // e.g. the checkout is closed: nothing can resume it, and refunding or completing the
    // order by hand are both judgement calls. No money moves until an operator decides.
    await records('Note that an operator must decide').noteMismatch({ id: mismatch.id, details: { needsOperator: `${mismatch.autoAction} failed: ${failure}` } });
  }
  await awaitOperator(input);
  return 'FLAGGED';
}

/** Starts the mismatch's operator workflow unless it already exists; it outlives this run. */
async function awaitOperator(input: MismatchResolutionInput): Promise<void> {
  try {
    await startChild(mismatchResolution, {
      workflowId: mismatchWorkflowId(input.mismatchId),
      args: [input],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      // Running or resolved: leave it. Failed or terminated: start it again, the record is still OPEN.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      staticSummary: mismatchSummary(input),
      typedSearchAttributes: mismatchStartAttributes(input),
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
