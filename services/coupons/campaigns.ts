// Coupon campaigns: what a campaign's coupons are worth, when they may be issued,
// and how much of the quota is reserved, confirmed or given back.
import type { Db } from '../../lib/db.ts';
import { notFound } from '../../lib/http-errors.ts';
import type { CouponCampaign, CouponKind } from '../../generated/prisma/client.ts';

export interface CampaignInput {
  campaignId: string;
  name: string;
  totalQuota: number;
  perCustomerLimit: number;
  validFrom: Date;
  validUntil: Date;
  kind: CouponKind;
  value: number;
  currency: string;
  minSpendMinor: number;
}

/** Creates the campaign once per id; the same id again returns the existing campaign unchanged. */
export async function createCampaign(db: Db, input: CampaignInput) {
  const { campaignId, ...data } = input;
  const inserted = await db.$executeRaw`
    INSERT INTO coupons_campaigns (id, name, total_quota, per_customer_limit, valid_from, valid_until, kind, value, currency,
                                   min_spend_minor, created_at, updated_at)
    VALUES (${campaignId}, ${data.name}, ${data.totalQuota}, ${data.perCustomerLimit}, ${data.validFrom}, ${data.validUntil},
            ${data.kind}::"CouponKind", ${data.value}, ${data.currency}, ${data.minSpendMinor}, now(), now())
    ON CONFLICT (id) DO NOTHING`;
  return { created: inserted === 1, campaign: await getCampaign(db, campaignId) };
}

export async function getCampaign(db: Db, campaignId: string) {
  const campaign = await db.couponCampaign.findUnique({ where: { id: campaignId } });
  if (!campaign) throw notFound(`unknown campaign ${campaignId}`);
  return toCampaignView(campaign);
}

export function isOpen(campaign: Pick<CouponCampaign, 'validFrom' | 'validUntil'>, now = new Date()): boolean {
  return campaign.validFrom.getTime() <= now.getTime() && now.getTime() < campaign.validUntil.getTime();
}

function toCampaignView(c: CouponCampaign) {
  return {
    campaignId: c.id,
    name: c.name,
    totalQuota: c.totalQuota,
    perCustomerLimit: c.perCustomerLimit,
    validFrom: c.validFrom.toISOString(),
    validUntil: c.validUntil.toISOString(),
    kind: c.kind,
    value: c.value,
    currency: c.currency,
    minSpendMinor: c.minSpendMinor,
    reserved: c.reserved,
    confirmed: c.confirmed,
    released: c.released,
    remaining: c.totalQuota - c.reserved - c.confirmed,
  };
}
