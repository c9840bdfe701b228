// One coupon for one customer: reserve the campaign's quota → grant the coupon into the
// customer's wallet → confirm the reservation. If the grant finally fails, the reservation is
// released (its compensation). Every step is keyed by the request id, so retries and replays
// find what an earlier attempt did. The result is the caller's single source of truth.
//
// A grant that timed out on our side may still have happened at the service: before trying
// again (and before giving the quota back) the workflow asks the service whether it did.
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { CouponGrant, CouponIssuanceActivities, CouponRequest } from '../activities/coupons-issuance.ts';
import {
  COUPON_GRANTS_TASK_QUEUE,
  issuanceStateQuery,
  type IssuanceInput,
  type IssuanceResult,
  type IssuanceState,
  type IssuanceStatus,
  type IssuanceStep,
} from '../shared/coupons.ts';
import { BusinessFailure } from '../shared/errors.ts';
import { CustomerIdKey, FlowStatusKey, NeedsAttentionKey } from '../shared/search-attributes.ts';

/** The HTTP client gives up at 8 s; a call is one attempt's worth of that. */
const SERVICE_CALL = '10 seconds';
/** Attempts at the grant (each followed by "did it happen?"), before the quota goes back. */
export const GRANT_ATTEMPTS = 5;
const GRANT_BACKOFF_MS = [1_000, 2_000, 4_000, 8_000];

const REFUSALS: Partial<Record<string, IssuanceStatus>> = {
  [BusinessFailure.QuotaExhausted]: 'EXHAUSTED',
  [BusinessFailure.CustomerLimitReached]: 'LIMIT_REACHED',
  [BusinessFailure.CampaignClosed]: 'CAMPAIGN_CLOSED',
};
const NON_RETRYABLE = [...Object.keys(REFUSALS), BusinessFailure.InvalidRequest, BusinessFailure.IllegalTransition, BusinessFailure.AlreadyCompensated];

/** Reserve: a few tries, then the issuance fails (releasing whatever a lost attempt reserved). */
const reserving = proxyActivities<CouponIssuanceActivities>({
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  summary: "Reserve the campaign's quota",
});

/** Confirm, release and "did it happen?": until done, since the grant's fate hangs on them. */
const UNTIL_DONE: ActivityOptions = {
  startToCloseTimeout: SERVICE_CALL,
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
};
// Each call names itself in the Web UI through the activity summary.
const settling = (summary: string) => proxyActivities<CouponIssuanceActivities>({ ...UNTIL_DONE, summary });

/**
 * The grant runs on its own task queue, whose worker carries the global rate limit. One attempt
 * per activity: the retry loop is ours, so the "did it happen?" check sits between attempts.
 */
const granting = proxyActivities<CouponIssuanceActivities>({
  taskQueue: COUPON_GRANTS_TASK_QUEUE,
  startToCloseTimeout: SERVICE_CALL,
  retry: { maximumAttempts: 1 },
  summary: "Grant the coupon into the customer's wallet",
});

export async function couponIssuance(input: IssuanceInput): Promise<IssuanceResult> {
  const state: IssuanceState = {
    requestId: input.requestId,
    campaignId: input.campaignId,
    status: 'RUNNING',
    step: null,
    grantAttempts: 0,
    result: null,
  };
  setHandler(issuanceStateQuery, () => state);
  // Nothing here waits for a person: a refusal or a failure is the issuance's final answer.
  const show = () => {
    upsertSearchAttributes([
      { key: FlowStatusKey, value: state.status },
      { key: NeedsAttentionKey, value: false },
      { key: CustomerIdKey, value: input.customerId },
    ]);
    const where = state.step === null ? '' : ` · ${state.step}`;
    const why = state.result?.reason ? ` · ${state.result.reason}` : '';
    setCurrentDetails(`**${state.status}**${where} · coupon of campaign ${input.campaignId}${why}`);
  };
  state.result = await issueCoupon(input, {
    step(step) {
      state.step = step;
      show();
    },
    grantAttempt() {
      state.grantAttempts += 1;
    },
  });
  state.status = state.result.status;
  state.step = null;
  show();
  return state.result;
}

/** How a single issuance follows its own progress (a distribution batch issues many and does not). */
export interface IssuanceProgress {
  step(step: IssuanceStep): void;
  grantAttempt(): void;
}

const UNWATCHED: IssuanceProgress = { step: () => {}, grantAttempt: () => {} };

/** reserve → grant → confirm, or release; shared by the single issuance and the distribution batches. */
export async function issueCoupon(request: CouponRequest, progress: IssuanceProgress = UNWATCHED): Promise<IssuanceResult> {
  const result = (status: IssuanceStatus, couponCode: string | null, reason: string | null): IssuanceResult => ({
    requestId: request.requestId,
    campaignId: request.campaignId,
    customerId: request.customerId,
    status,
    couponCode,
    reason,
  });
  const { requestId } = request;

  const releaseQuota = () => {
    progress.step('RELEASING_QUOTA');
    return settling('Give the quota back').releaseCouponQuota({ requestId });
  };

  progress.step('RESERVING_QUOTA');
  try {
    await reserving.reserveCouponQuota(request);
  } catch (err) {
    const refusal = refusalOf(err);
    if (refusal) return result(refusal.status, null, refusal.reason);
    // unanswered: a lost attempt may have reserved, so give it back
    await releaseQuota();
    return result('FAILED', null, `quota could not be reserved: ${describe(err)}`);
  }

  progress.step('GRANTING');
  const grant = await grantCheckingEachTime(request, progress);
  if ('failure' in grant) {
    await releaseQuota();
    return result('FAILED', null, `coupon could not be granted: ${grant.failure}`);
  }
  progress.step('CONFIRMING');
  await settling('Confirm the quota reservation').confirmCouponQuota({ requestId });
  return result('ISSUED', grant.couponCode, null);
}

async function grantCheckingEachTime(request: CouponRequest, progress: IssuanceProgress): Promise<CouponGrant | { failure: string }> {
  for (let attempt = 1; ; attempt++) {
    let failure: string;
    let final = attempt >= GRANT_ATTEMPTS;
    progress.grantAttempt();
    try {
      return await granting.grantCoupon(request);
    } catch (err) {
      if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
      failure = describe(err);
      // the service refused (e.g. no reservation): asking again will not change its mind
      if (err.cause instanceof ApplicationFailure && NON_RETRYABLE.includes(err.cause.type ?? '')) final = true;
    }
    // Timed out or refused: it may still have happened (a slow answer, a retry racing the first).
    const granted = await settling('Check whether the grant happened').findCouponGrant({ requestId: request.requestId });
    if (granted) return granted;
    if (final) return { failure };
    await sleep(GRANT_BACKOFF_MS[Math.min(attempt - 1, GRANT_BACKOFF_MS.length - 1)]!, { summary: `Grant again (attempt ${attempt + 1} of ${GRANT_ATTEMPTS})` });
  }
}

function refusalOf(err: unknown): { status: IssuanceStatus; reason: string } | null {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) {
    if (err instanceof ActivityFailure) return null;
    throw err; // a bug in this code: fail the task, fix, replay
  }
  const status = REFUSALS[err.cause.type ?? ''];
  return status ? { status, reason: err.cause.message } : null;
}

function describe(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
