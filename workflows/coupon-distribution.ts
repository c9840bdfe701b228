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
// customer is left with a reservation half-way.
import {
  condition,
  continueAsNew,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DistributionRecipientActivities } from '../activities/coupons-issuance.ts';
import {
  cancelDistributionSignal,
  distributionProgressQuery,
  distributionRequestId,
  distributionWorkflowId,
  pauseDistributionSignal,
  resumeDistributionSignal,
  type DistributionInput,
  type DistributionProgress,
  type DistributionStatus,
  type DistributionTotals,
  type IssuanceResult,
} from '../shared/coupons.ts';
import { issueCoupon } from './coupon-issuance.ts';

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

const recipients = proxyActivities<DistributionRecipientActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
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
  setHandler(pauseDistributionSignal, () => void (paused = true));
  setHandler(resumeDistributionSignal, () => void (paused = false));
  setHandler(cancelDistributionSignal, () => void (cancelled = true));
  const total = (recipientCount ??= await recipients.countDistributionRecipients({ distributionId: input.distributionId }));

  for (let wave = 0; offset < total; wave++) {
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
        }),
      ),
    );
    waveInFlight = false;
    for (const batch of results) addTotals(totals, batch);
    offset = Math.min(starts[starts.length - 1]! + batchSize, total);
  }
  return progress();
}

/** One page of recipients: each gets the campaign's coupon once, whatever happens to this run. */
export async function couponDistributionBatch(input: DistributionBatchInput): Promise<DistributionTotals> {
  const customerIds = await recipients.readDistributionRecipients({
    distributionId: input.distributionId,
    offset: input.offset,
    limit: input.limit,
  });
  const totals = emptyTotals();
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
    }
  };
  await Promise.all(Array.from({ length: Math.min(ISSUES_IN_FLIGHT, customerIds.length) }, issueNext));
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
