// Coupon issuances through the API, as marketing asks for them: more requests than the campaign
// has coupons, some customers asking twice (one coupon each at most), some requests sent twice
// (the same issuance). Each is followed until it has a result.
import { ChaosApi, errorCode, sleep, type Caller } from './api.ts';
import { CAMPAIGN_ID, type IssuancePlan } from './fixtures.ts';

const MARKETING: Caller = ['marketing', 'mkt-chaos'];

export interface IssuanceTally {
  started: number;
  refusedAtStart: Record<string, number>;
  outcomes: Record<string, number>;
  /** requestId → the result's status and coupon, for the invariant "one coupon per grant request". */
  results: Map<string, { status: string; couponCode: string | null }>;
  unfinished: string[];
}

export function newIssuanceTally(): IssuanceTally {
  return { started: 0, refusedAtStart: {}, outcomes: {}, results: new Map(), unfinished: [] };
}

const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

export async function driveIssuance(api: ChaosApi, plan: IssuancePlan, { deadline, tally }: { deadline: number; tally: IssuanceTally }): Promise<void> {
  const body = { requestId: plan.requestId, campaignId: CAMPAIGN_ID, customerId: plan.customerId };
  const post = () => api.call('POST', '/coupons/issuances', MARKETING, { body, giveUpAfterMs: Math.max(deadline - Date.now(), 1_000) });
  const started = await post();
  if (started.status !== 202) {
    bump(tally.refusedAtStart, `${started.status} ${errorCode(started) ?? ''}`.trim());
    return;
  }
  tally.started += 1;
  if (plan.repeatPost) await post();
  for (;;) {
    const view = await api.call('GET', `/coupons/issuances/${plan.requestId}?wait=true`, MARKETING, { giveUpAfterMs: 30_000 });
    const status: string = view.status === 200 ? view.body.status : `HTTP ${view.status}`;
    if (view.status === 200 && status !== 'RUNNING') {
      bump(tally.outcomes, status);
      tally.results.set(plan.requestId, { status, couponCode: view.body.result?.couponCode ?? null });
      return;
    }
    if (Date.now() > deadline) {
      tally.unfinished.push(`${plan.requestId} (${status})`);
      return;
    }
    await sleep(1_000);
  }
}
