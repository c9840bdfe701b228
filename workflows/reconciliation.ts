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
//
// A day holds tens of thousands of references, so a run never holds them at once: it pages
// through them in reference order (an activity reads and classifies one page and answers only
// its mismatches), settles each page's mismatches at most SETTLING_IN_FLIGHT at a time, and
// continues as new once its history grows, carrying the cursor, the running counts and a page's
// mismatches not yet settled. Every run of the chain writes the one report row of the first.
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { ReconciliationActivities, RecordedMismatch, RunCounts } from '../activities/reconciliation.ts';
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
import { classifyAll, reconciliationPeriod, type Mismatch, type Period, type ReconciliationInput } from './reconciliation-rules.ts';

export { mismatchResolution } from './mismatch-resolution.ts';
export type { ReconciliationInput } from './reconciliation-rules.ts';

/**
 * Guards paging: runs recorded before it replay collecting every fact in one activity and settling
 * every mismatch at once; with it a run pages, settles in bounded turns and continues as new.
 */
export const PAGED_RECONCILIATION_PATCH = 'reconciliation-paged';

/** References per page by default (the activity caps it at MAX_PAGE_REFERENCES, 500). */
export const DEFAULT_PAGE_SIZE = 500;
/** Mismatches settled at once: each may start a child (a Refund, an operator's workflow). */
export const SETTLING_IN_FLIGHT = 50;
/**
 * Of those, automatic actions at once: a nudged checkout's wait for the order to be paid reads the
 * order a few times (≈ 80 events), where handing a mismatch to an operator costs ≈ 5.
 */
export const AUTOMATIC_IN_FLIGHT = 10;
/**
 * A run takes no new page or mismatch once its history is this long; it continues as new instead.
 * What is in flight still ends in this run, so a run stays under ≈ 800 + one page (≈ 15) + 10
 * automatic actions (≈ 800) + 40 hand-offs (≈ 200) < 2,000 events; a plain day far below that.
 */
export const DEFAULT_CONTINUE_AFTER_EVENTS = 800;
/**
 * The report names at most this many mismatches and deferred references (the counts are always
 * complete; every mismatch is a row of reconciliation_mismatches), so the result stays small.
 */
export const REPORT_LIST_LIMIT = 250;

export interface ReconciliationOptions extends ReconciliationInput {
  /** How long an automatic `complete-order` waits for the order to become PAID (default 60 s). */
  completionWaitMs?: number;
  /** How long an automatic `refund` waits for its Refund workflow (default 5 min); past that, an operator takes over. */
  refundWaitMs?: number;
  /** References per page (default and at most 500). */
  pageSize?: number;
  /** History length at which a run continues as new (default 800 events). */
  continueAfterEvents?: number;
  /** Set by the run itself when it continues as new: where the reconciliation stands. */
  continued?: ReconciliationCarry;
}

/** A mismatch of the current page whose settling is still to come, with what recording it answered. */
export interface PendingMismatch {
  mismatch: Mismatch;
  recorded: RecordedMismatch;
}

/** What one run of a reconciliation hands the next when it continues as new. */
export interface ReconciliationCarry {
  /** The first run's id: the report row, and the run that counts as a mismatch's first detector. */
  runId: string;
  period: Period;
  /** The last reference examined (null before the first page). */
  cursor: string | null;
  /** False once the last page has been read. */
  morePages: boolean;
  /** The current page's mismatches not settled yet. */
  pending: PendingMismatch[];
  counts: RunCounts;
  mismatches: MismatchOutcome[];
  deferredReferences: string[];
  /** Mismatches and deferred references beyond REPORT_LIST_LIMIT, counted but not named. */
  omitted: { mismatches: number; deferredReferences: number };
  /** Runs before this one. */
  runsBefore: number;
}

const pages = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '2 minutes',
  // a page takes seconds; a worker lost in the middle of one is noticed and the page read again
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 8 },
  summary: 'Read and classify a page of references',
});

/** Set by the Schedule on every workflow it starts: the action's nominal time. */
const ScheduledStartTimeKey = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

type Outcome = 'AUTO_RESOLVED' | 'FLAGGED' | 'ALREADY_KNOWN';
type MismatchOutcome = { id: string; kind: Mismatch['kind']; outcome: Outcome };

export interface ReconciliationReport extends RunCounts {
  runId: string;
  periodStart: string;
  periodEnd: string;
  /** In reference order; at most REPORT_LIST_LIMIT (see `omitted`). */
  mismatches: MismatchOutcome[];
  /** At most REPORT_LIST_LIMIT (see `omitted`). */
  deferredReferences: string[];
  /** What the lists leave out on a day with more than REPORT_LIST_LIMIT of either (absent in runs before paging). */
  omitted?: { mismatches: number; deferredReferences: number };
  /** Temporal runs the reconciliation took (continued as new between them). */
  runs?: number;
}

export async function reconciliation(options: ReconciliationOptions = {}): Promise<ReconciliationReport> {
  const info = workflowInfo();
  // A scheduled run has no arguments: its period ends at the Schedule's action time (or, started
  // by hand, at its own start). Both are fixed in history, so a replay derives the same period.
  const startPeriod = () => reconciliationPeriod(options, info.typedSearchAttributes.get(ScheduledStartTimeKey) ?? info.startTime);
  if (!options.continued && !patched(PAGED_RECONCILIATION_PATCH)) return reconcileAllAtOnce(options, startPeriod());
  const carry: ReconciliationCarry = options.continued ?? {
    runId: info.runId,
    period: startPeriod(),
    cursor: null,
    morePages: true,
    pending: [],
    counts: { examined: 0, deferred: 0, detected: 0, newMismatches: 0, alreadyKnown: 0, autoResolved: 0, flagged: 0 },
    mismatches: [],
    deferredReferences: [],
    omitted: { mismatches: 0, deferredReferences: 0 },
    runsBefore: 0,
  };
  const { runId, period, counts } = carry;
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const continueAfterEvents = options.continueAfterEvents ?? DEFAULT_CONTINUE_AFTER_EVENTS;
  // A run first does some work of its own (a page, or a turn of settling), so however small the
  // limit, the chain moves on instead of continuing as new forever.
  let worked = false;
  const historyFull = () => worked && (workflowInfo().historyLength >= continueAfterEvents || workflowInfo().continueAsNewSuggested);
  const settled = () => counts.alreadyKnown + counts.autoResolved + counts.flagged;
  const progress: ReconciliationProgress = {
    step: 'COLLECTING_FACTS',
    periodStart: period.start,
    periodEnd: period.end,
    examined: options.continued ? counts.examined : null,
    detected: options.continued ? counts.detected : null,
    settled: settled(),
  };
  setHandler(reconciliationProgressQuery, () => progress);
  const enter = (step: ReconciliationStep) => {
    Object.assign(progress, { step, settled: settled() });
    const counted = progress.detected === null ? '' : ` · ${progress.examined} examined · ${progress.settled}/${progress.detected} mismatches settled`;
    const run = carry.runsBefore === 0 ? '' : ` · run ${carry.runsBefore + 1}`;
    setCurrentDetails(`**${step}** · ${period.start} – ${period.end}${counted}${run}`);
  };
  enter(carry.pending.length > 0 ? 'SETTLING' : 'COLLECTING_FACTS');
  if (!options.continued) await records('Record the run').recordRunStarted({ runId, workflowId: info.workflowId, period });

  while (carry.pending.length > 0 || carry.morePages) {
    if (historyFull()) {
      // Our search attributes go on with the run (FlowStatus RUNNING, where the Web UI finds it); the
      // Temporal-reserved ones (the Schedule's) are the server's to set, and the period is carried anyway.
      const typedSearchAttributes = workflowInfo().typedSearchAttributes.getAll().filter(({ key }) => !key.name.startsWith('Temporal'));
      return makeContinueAsNewFunc<typeof reconciliation>({ typedSearchAttributes })({ ...options, continued: { ...carry, runsBefore: carry.runsBefore + 1 } });
    }
    if (carry.pending.length === 0) {
      enter('COLLECTING_FACTS');
      const page = await pages.collectReconciliationPage({ period, after: carry.cursor, limit: pageSize });
      worked = true;
      counts.examined += page.examined;
      counts.deferred += page.deferred.length;
      counts.detected += page.mismatches.length;
      carry.omitted.deferredReferences += keepUpTo(carry.deferredReferences, page.deferred);
      Object.assign(progress, { examined: counts.examined, detected: counts.detected });
      carry.cursor = page.nextCursor ?? carry.cursor;
      carry.morePages = page.nextCursor !== null;
      if (page.mismatches.length === 0) continue;
      enter('RECORDING_MISMATCHES');
      const recorded = new Map((await records('Record the mismatches').recordMismatches({ runId, mismatches: page.mismatches })).map((r) => [r.id, r]));
      counts.newMismatches += [...recorded.values()].filter((r) => r.isNew).length;
      carry.pending = page.mismatches.map((mismatch) => ({ mismatch, recorded: recorded.get(mismatch.id)! }));
    }
    enter('SETTLING');
    const done = await settleInTurn(carry.pending, options, historyFull, (outcome) => {
      counts[OUTCOME_COUNT[outcome]] += 1;
      worked = true;
      enter('SETTLING');
    });
    carry.omitted.mismatches += keepUpTo(
      carry.mismatches,
      done.map(({ mismatch, outcome }) => ({ id: mismatch.id, kind: mismatch.kind, outcome })),
    );
    carry.pending = carry.pending.slice(done.length);
  }

  const report = { mismatches: carry.mismatches, deferredReferences: carry.deferredReferences, omitted: carry.omitted, runs: carry.runsBefore + 1 };
  await records('Record the run finished').recordRunFinished({ runId, counts, report });
  log.info('Reconciliation finished', { ...counts, runs: report.runs });
  enter('FINISHED');
  upsertSearchAttributes([
    { key: FlowStatusKey, value: 'FINISHED' },
    { key: NeedsAttentionKey, value: false },
  ]);
  return { runId, periodStart: period.start, periodEnd: period.end, ...counts, ...report };
}

const OUTCOME_COUNT = { AUTO_RESOLVED: 'autoResolved', FLAGGED: 'flagged', ALREADY_KNOWN: 'alreadyKnown' } as const satisfies Record<Outcome, keyof RunCounts>;

/** Appends what fits under REPORT_LIST_LIMIT; answers how many did not fit. */
function keepUpTo<T>(list: T[], more: T[]): number {
  const room = Math.max(REPORT_LIST_LIMIT - list.length, 0);
  list.push(...more.slice(0, room));
  return Math.max(more.length - room, 0);
}

/**
 * Settles the mismatches in order, SETTLING_IN_FLIGHT at a time (AUTOMATIC_IN_FLIGHT of them
 * automatic actions), taking no new one once `stop` says so; answers the ones settled (a prefix of
 * `pending`), once none is in flight any more.
 */
async function settleInTurn(
  pending: PendingMismatch[],
  options: ReconciliationOptions,
  stop: () => boolean,
  onSettled: (outcome: Outcome) => void,
): Promise<{ mismatch: Mismatch; outcome: Outcome }[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  let automatic = 0;
  const lane = async () => {
    while (next < pending.length && !stop()) {
      const i = next++;
      const { mismatch, recorded } = pending[i]!;
      const acts = recorded.isNew && mismatch.autoAction !== null;
      if (acts) {
        await condition(() => automatic < AUTOMATIC_IN_FLIGHT);
        automatic += 1;
      }
      outcomes[i] = await settle(mismatch, recorded, options);
      if (acts) automatic -= 1;
      onSettled(outcomes[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SETTLING_IN_FLIGHT, pending.length) }, lane));
  return pending.slice(0, next).map(({ mismatch }, i) => ({ mismatch, outcome: outcomes[i]! }));
}

/** Collects every fact at once and settles every mismatch at once: how runs recorded before paging replay. */
async function reconcileAllAtOnce(options: ReconciliationOptions, period: Period): Promise<ReconciliationReport> {
  const info = workflowInfo();
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
