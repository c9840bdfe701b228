// What a chaos run sells and gives away, put in its fresh database before any fault: SKUs of its
// own (one scarce, so some checkouts run out of stock; one dear, so some refunds need an
// approval), coupons for customers and a few shared ones that checkouts race for, and a
// campaign with fewer coupons than requests. Plus the run's plan, drawn from a seeded random
// generator so the same --seed makes the same requests (timing still differs).
import type { Db } from '../../lib/db.ts';
import { PAID_AFTER_TIMEOUT_WINDOW } from './schedule.ts';
import { TEST_CARD_NUMBERS as CARDS } from '../../services/psp/cards.ts';

export const CURRENCY = 'EUR';
export const CATALOGUE = [
  { sku: 'CHAOS-TEE', name: 'Chaos tee', priceMinor: 1500, onHand: 1000 },
  { sku: 'CHAOS-MUG', name: 'Chaos mug', priceMinor: 900, onHand: 1000 },
  // scarce: checkouts compete for it and some are refused out of stock
  { sku: 'CHAOS-LAMP', name: 'Chaos lamp', priceMinor: 2500, onHand: 4 },
  // two of them cost more than the refund approval threshold (100.00)
  { sku: 'CHAOS-COAT', name: 'Chaos coat', priceMinor: 6000, onHand: 1000 },
] as const;
export const CAMPAIGN_ID = 'camp-chaos';
const CUSTOMERS = 12;
const SHARED_COUPONS = ['CHAOS-SHARED-1', 'CHAOS-SHARED-2'];

/** The simulator's test cards (services/psp/cards.ts), by what they do. */
export { CARDS };
export type CardName = keyof typeof CARDS;

export interface CheckoutPlan {
  index: number;
  key: string;
  customerId: string;
  lines: { sku: string; quantity: number }[];
  couponCode?: string;
  card: CardName;
  /** When to start, as a fraction of the load phase. */
  at: number;
  /** The customer cancels this long after the start. */
  cancelAfterMs?: number;
  /** The same POST is sent twice (an impatient client): it must name the same checkout. */
  repeatPost: boolean;
}

export type RefundKind = 'partial' | 'full-after-partial' | 'concurrent' | 'approve' | 'reject' | 'full';
export interface RefundJobPlan {
  index: number;
  kind: RefundKind;
  /** Refund requests this job makes (3 for concurrent ones). */
  requests: number;
  at: number;
}

export interface IssuancePlan {
  requestId: string;
  customerId: string;
  at: number;
  repeatPost: boolean;
}

export interface Plan {
  runId: string;
  checkouts: CheckoutPlan[];
  refunds: RefundJobPlan[];
  issuances: IssuancePlan[];
  campaignQuota: number;
  couponsPlaced: number;
}

/** Mulberry32: small, seeded, good enough to vary a plan. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makePlan(counts: { checkouts: number; refunds: number; issuances: number }, seed: number): Plan {
  const random = seededRandom(seed);
  const pick = <T>(weighted: [T, number][]): T => {
    let r = random() * weighted.reduce((sum, [, w]) => sum + w, 0);
    for (const [value, weight] of weighted) if ((r -= weight) < 0) return value;
    return weighted[0]![0];
  };
  const runId = `${Date.now().toString(36)}${seed.toString(36)}`;
  const customer = (i: number) => `cust-chaos-${String((i % CUSTOMERS) + 1).padStart(2, '0')}`;

  const cycle: RefundKind[] = ['partial', 'full-after-partial', 'concurrent', 'approve', 'reject', 'full'];
  const refunds: RefundJobPlan[] = [];
  for (let budget = counts.refunds, i = 0; budget > 0; i++) {
    let kind = cycle[i % cycle.length]!;
    if (kind === 'concurrent' && budget < 3) kind = 'full';
    const requests = kind === 'concurrent' ? 3 : 1;
    refunds.push({ index: i, kind, requests, at: 0 });
    budget -= requests;
  }
  // from a quarter of the load phase to near its end: most of them while the provider refuses refunds
  refunds.forEach((job, i) => (job.at = 0.25 + (0.6 * i) / Math.max(refunds.length, 1)));
  // The first checkouts are sure to be paid, so refunds have orders early: every other one above the
  // approval threshold (one for each refund that needs an approval, and a spare), the others not.
  const dear = refunds.filter((job) => job.kind === 'approve' || job.kind === 'reject').length + 1;

  const checkouts: CheckoutPlan[] = [];
  let shared = 0;
  for (let i = 0; i < counts.checkouts; i++) {
    const at = (0.75 * i) / Math.max(counts.checkouts, 1);
    const sure = i < 2 * dear;
    const forApproval = sure && i % 2 === 1;
    // most cancels come while the provider decides late and refuses voids
    const inWindow = at > PAID_AFTER_TIMEOUT_WINDOW[0] && at < PAID_AFTER_TIMEOUT_WINDOW[1] - 0.04;
    const cancelled = !sure && random() < (inWindow ? 0.45 : 0.06);
    // a cancel is meant to land while the payment is still pending: mostly the late-approving card
    const card: CardName = sure
      ? 'approve'
      : cancelled
        ? pick<CardName>([['approveLate', 3], ['approve', 1]])
        : pick<CardName>([['approve', 55], ['approveLate', 12], ['declined', 10], ['insufficientFunds', 8], ['timeout', 7]]);
    const lines: CheckoutPlan['lines'] = [];
    const shape = random();
    if (forApproval || (!sure && shape < 0.08)) lines.push({ sku: 'CHAOS-COAT', quantity: 2 });
    else if (!sure && shape < 0.2) lines.push({ sku: 'CHAOS-LAMP', quantity: 1 });
    else {
      lines.push({ sku: 'CHAOS-TEE', quantity: 1 + Math.floor(random() * 3) });
      if (random() < 0.5) lines.push({ sku: 'CHAOS-MUG', quantity: 1 + Math.floor(random() * 2) });
    }
    let couponCode: string | undefined;
    const couponRoll = random();
    if (sure) couponCode = undefined; // a shared coupon may be taken: nothing may stop these
    else if (couponRoll < 0.06) couponCode = SHARED_COUPONS[shared++ % SHARED_COUPONS.length];
    else if (couponRoll < 0.3) couponCode = `CHAOS-C${i}`;
    checkouts.push({
      index: i,
      key: `chaos-${runId}-${i}`,
      customerId: customer(i),
      lines,
      couponCode,
      card,
      at,
      cancelAfterMs: cancelled ? 500 + Math.floor(random() * 3_000) : undefined,
      repeatPost: random() < 0.1,
    });
  }

  const issuances: IssuancePlan[] = [];
  const distinct = Math.max(1, Math.ceil(counts.issuances * 0.85));
  for (let i = 0; i < counts.issuances; i++) {
    // some customers ask twice: the per-customer limit refuses the second
    const who = i < distinct ? i : Math.floor(random() * distinct);
    issuances.push({
      requestId: `iss-${runId}-${i}`,
      customerId: `cust-camp-${String(who + 1).padStart(3, '0')}`,
      at: 0.05 + (0.75 * i) / Math.max(counts.issuances, 1),
      repeatPost: random() < 0.15,
    });
  }
  const couponsPlaced = checkouts.filter((c) => c.couponCode).length;
  return { runId, checkouts, refunds, issuances, campaignQuota: Math.max(1, Math.floor(counts.issuances * 0.6)), couponsPlaced };
}

/** The SKUs, coupons and loyalty accounts the plan needs; returns each SKU's stock at the start. */
export async function placeFixtures(db: Db, plan: Plan): Promise<Map<string, number>> {
  // the plentiful SKUs grow with the run (a checkout takes at most 3 of one), so a large run runs
  // out of the scarce lamp only, as a small one does
  const plenty = Math.max(1000, 3 * plan.checkouts.length);
  await db.stockItem.createMany({
    data: CATALOGUE.map((item) => ({ ...item, onHand: item.onHand >= 1000 ? plenty : item.onHand, currency: CURRENCY, reserved: 0 })),
    skipDuplicates: true,
  });
  const coupons = new Map<string, string | null>();
  for (const c of plan.checkouts) {
    if (!c.couponCode) continue;
    coupons.set(c.couponCode, c.couponCode.startsWith('CHAOS-SHARED') ? null : c.customerId);
  }
  await db.coupon.createMany({
    data: [...coupons].map(([code, customerId]) => ({ code, customerId, kind: 'FIXED' as const, value: 300, currency: CURRENCY, minSpendMinor: 0 })),
    skipDuplicates: true,
  });
  const stock = await db.stockItem.findMany({ select: { sku: true, onHand: true } });
  return new Map(stock.map((s) => [s.sku, s.onHand]));
}

/** The campaign the issuances compete for, created at the coupons service as marketing would. */
export async function createCampaign(couponsUrl: string, authorization: Record<string, string>, quota: number): Promise<void> {
  const hour = 60 * 60_000;
  const res = await fetch(`${couponsUrl}/campaigns`, {
    method: 'POST',
    headers: { ...authorization, 'content-type': 'application/json', 'idempotency-key': `campaign:${CAMPAIGN_ID}` },
    body: JSON.stringify({
      campaignId: CAMPAIGN_ID, name: 'Chaos campaign', totalQuota: quota, perCustomerLimit: 1,
      validFrom: new Date(Date.now() - hour).toISOString(), validUntil: new Date(Date.now() + 24 * hour).toISOString(),
      kind: 'FIXED', value: 500, currency: CURRENCY, minSpendMinor: 0,
    }),
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`cannot create the campaign: ${res.status} ${await res.text()}`);
}
