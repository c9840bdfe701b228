// A campaign's coupons for a list of customers (tens of thousands). The parent pages through
// the recipients the API stored, in waves of child batches (`couponDistributionBatch`), and
// continues as new every few waves carrying the offset and totals, so no history grows large.
// Each batch issues to its recipients with the same reserve → grant → confirm/release steps as
// a single issuance, under request ids derived from the distribution and the customer: a batch
// run again (after a worker restart, or replayed) finds what it already did instead of doing it
// twice. How fast grants reach the coupons service is the grant task queue's rate limit, set on
// its worker and enforced by the Temporal server across all workers — not counted here.
//
// Pause and cancel take effect between waves: batches already started run to their end, so no
// customer is left with a reservation half-way. Pause, resume and cancel are Updates (the API's)
// and signals (the CLI's) with one rule: one that changes nothing (pausing a paused run) is refused.
import {
  condition,
  continueAsNew,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DistributionRecipientActivities } from '../activities/coupons-issuance.ts';
import {
  cancelDistributionSignal,
  cancelDistributionUpdate,
  distributionBatchProgressQuery,
  distributionBatchSummary,
  distributionProgressQuery,
  distributionStartAttributes,
  distributionRequestId,
  distributionWorkflowId,
  pauseDistributionSignal,
  pauseDistributionUpdate,
  resumeDistributionSignal,
  resumeDistributionUpdate,
  type DistributionAction,
  type DistributionBatchProgress,
  type DistributionInput,
  type DistributionProgress,
  type DistributionStatus,
  type DistributionTotals,
  type IssuanceResult,
} from '../shared/coupons.ts';
import { FlowStatusKey, NeedsAttentionKey } from '../shared/search-attributes.ts';
import type { Refusal } from '../shared/operator-actions.ts';
import { issueCoupon } from './coupon-issuance.ts';
import { operatorActions } from './operator-actions.ts';

export const DEFAULT_BATCH_SIZE = 500;
export const DEFAULT_PARALLEL_BATCHES = 2;
/** Waves per run before continuing as new: a run's history stays at a few hundred events. */
export const WAVES_PER_RUN = 10;
/**
 * Issuances in flight at once inside one batch. The grant rate limit is the brake on the coupons
 * service's wallet; this keeps the reservations (one campaign row, locked per reservation) from
 * queueing past their timeouts.
 */
const ISSUES_IN_FLIGHT = 25;

const recipientsStep = (summary: string) =>
  proxyActivities<DistributionRecipientActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
    summary,
  });

export interface DistributionBatchInput {
  distributionId: string;
  campaignId: string;
  offset: number;
  limit: number;
}

export function emptyTotals(): DistributionTotals {
  return { issued: 0, exhausted: 0, limitReached: 0, failed: 0 };
}

export async function couponDistribution(input: DistributionInput): Promise<DistributionProgress> {
  const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const parallelBatches = input.parallelBatches ?? DEFAULT_PARALLEL_BATCHES;
  // null until counted: the handlers are registered first, so the progress query answers from the start
  let recipientCount: number | null = input.recipients ?? null;
  let offset = input.offset ?? 0;
  const totals = { ...emptyTotals(), ...input.totals };
  let paused = input.paused ?? false;
  let cancelled = false;
  let waveInFlight = false;

  const status = (): DistributionStatus => {
    if (cancelled) return 'CANCELLED';
    if (recipientCount !== null && offset >= recipientCount) return 'COMPLETED';
    // PAUSED once nothing moves any more: the wave in flight when the signal came has ended
    return paused && !waveInFlight ? 'PAUSED' : 'RUNNING';
  };
  const progress = (): DistributionProgress => ({
    distributionId: input.distributionId,
    campaignId: input.campaignId,
    status: status(),
    recipients: recipientCount ?? 0,
    processed: Math.min(offset, recipientCount ?? 0),
    totals: { ...totals },
  });
  setHandler(distributionProgressQuery, progress);
  // Who last paused, resumed or cancelled, for the details.
  let lastAction = '';
  // A refused signal re-renders the details only (show() would upsert a status that moved meanwhile).
  const actions = operatorActions(progress, () => setCurrentDetails(describe(progress())));
  const stillRunning = (): Refusal | null => (cancelled ? { code: 'already_cancelled', message: 'the distribution is cancelled' } : null);
  const record = (verb: string, { by, reason }: Partial<DistributionAction>) => {
    lastAction = by ? ` · ${verb} by ${by}${reason ? `: ${reason}` : ''}` : '';
    actions.forget();
    setCurrentDetails(describe(progress()));
  };
  // Senders from before pause and resume took an argument sent none.
  const anonymous = { by: '' } as DistributionAction;
  actions.accept({
    signal: pauseDistributionSignal,
    update: pauseDistributionUpdate,
    signalDefault: anonymous,
    check: () => stillRunning() ?? (paused ? { code: 'already_paused', message: 'the distribution is already paused' } : null),
    apply: (action) => {
      paused = true;
      record('paused', action);
    },
  });
  actions.accept({
    signal: resumeDistributionSignal,
    update: resumeDistributionUpdate,
    signalDefault: anonymous,
    check: () => stillRunning() ?? (paused ? null : { code: 'not_paused', message: 'the distribution is not paused' }),
    apply: (action) => {
      paused = false;
      record('resumed', action);
    },
  });
  actions.accept({
    signal: cancelDistributionSignal,
    update: cancelDistributionUpdate,
    check: stillRunning,
    apply: (action) => {
      cancelled = true;
      record('cancelled', action);
    },
  });
  actions.listen();
  /**
   * FlowStatus follows status() (upserted when it changes); the details follow every wave.
   * NeedsAttention stays false, even while PAUSED: a pause is a person's deliberate choice, not a
   * run stuck until someone notices it; `FlowStatus = "PAUSED"` finds paused distributions.
   */
  let shownStatus: DistributionStatus | null = null;
  const show = () => {
    const now = progress();
    if (now.status !== shownStatus) {
      shownStatus = now.status;
      actions.forget();
      upsertSearchAttributes([
        { key: FlowStatusKey, value: now.status },
        { key: NeedsAttentionKey, value: false },
      ]);
    }
    setCurrentDetails(describe(now));
  };
  function describe(now: DistributionProgress): string {
    const { issued, exhausted, limitReached, failed } = now.totals;
    return (
      `**${now.status}** · campaign ${input.campaignId} · ${now.processed}/${now.recipients} recipients · ` +
      `${issued} issued, ${exhausted} quota exhausted, ${limitReached} at their limit, ${failed} failed${lastAction}${actions.ignored()}`
    );
  }
  show();
  const total = (recipientCount ??= await recipientsStep('Count the recipients').countDistributionRecipients({ distributionId: input.distributionId }));

  for (let wave = 0; offset < total; wave++) {
    show();
    await condition(() => !paused || cancelled);
    if (cancelled) break;
    if (wave >= WAVES_PER_RUN || workflowInfo().continueAsNewSuggested) {
      return continueAsNew<typeof couponDistribution>({ ...input, batchSize, parallelBatches, recipients: total, offset, totals, paused });
    }
    const starts: number[] = [];
    for (let start = offset; starts.length < parallelBatches && start < total; start += batchSize) starts.push(start);
    waveInFlight = true;
    const results = await Promise.all(
      starts.map((start) =>
        executeChild(couponDistributionBatch, {
          workflowId: `${distributionWorkflowId(input.distributionId)}-batch-${start}`,
          args: [{ distributionId: input.distributionId, campaignId: input.campaignId, offset: start, limit: batchSize }],
          staticSummary: distributionBatchSummary(input.campaignId, start, Math.min(batchSize, total - start)),
          typedSearchAttributes: distributionStartAttributes(),
        }),
      ),
    );
    waveInFlight = false;
    for (const batch of results) addTotals(totals, batch);
    offset = Math.min(starts[starts.length - 1]! + batchSize, total);
  }
  show();
  return progress();
}

/** One page of recipients: each gets the campaign's coupon once, whatever happens to this run. */
export async function couponDistributionBatch(input: DistributionBatchInput): Promise<DistributionTotals> {
  const totals = emptyTotals();
  const progress: DistributionBatchProgress = { distributionId: input.distributionId, offset: input.offset, limit: input.limit, recipients: null, processed: 0, totals };
  setHandler(distributionBatchProgressQuery, () => progress);
  // Started RUNNING by its parent; a batch never waits for a person.
  const finish = () => {
    upsertSearchAttributes([
      { key: FlowStatusKey, value: 'COMPLETED' },
      { key: NeedsAttentionKey, value: false },
    ]);
    setCurrentDetails(`**COMPLETED** · recipients ${input.offset + 1}–${input.offset + progress.processed} · ${totals.issued} issued`);
  };
  const customerIds = await recipientsStep('Read this page of recipients').readDistributionRecipients({
    distributionId: input.distributionId,
    offset: input.offset,
    limit: input.limit,
  });
  progress.recipients = customerIds.length;
  setCurrentDetails(`**RUNNING** · recipients ${input.offset + 1}–${input.offset + customerIds.length}`);
  let next = 0;
  const issueNext = async (): Promise<void> => {
    while (next < customerIds.length) {
      const customerId = customerIds[next++]!;
      const result = await issueCoupon({
        requestId: distributionRequestId(input.distributionId, customerId),
        campaignId: input.campaignId,
        customerId,
      });
      countResult(totals, result);
      progress.processed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(ISSUES_IN_FLIGHT, customerIds.length) }, issueNext));
  finish();
  return totals;
}

function countResult(totals: DistributionTotals, result: IssuanceResult): void {
  if (result.status === 'ISSUED') totals.issued++;
  else if (result.status === 'EXHAUSTED') totals.exhausted++;
  else if (result.status === 'LIMIT_REACHED') totals.limitReached++;
  else totals.failed++;
}

function addTotals(into: DistributionTotals, add: DistributionTotals): void {
  into.issued += add.issued;
  into.exhausted += add.exhausted;
  into.limitReached += add.limitReached;
  into.failed += add.failed;
}
