// Customers' wallets: a grant turns a quota reservation into the customer's own
// coupon (an ordinary coupons_coupons row, so checkout locks it like any other),
// exactly once per request id. The coupon code derives from the campaign and the
// request id, so a retried grant — even one whose answer was lost — names the same
// coupon, and a caller that timed out can ask whether the grant happened.
import { createHash } from 'node:crypto';
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { CouponGrant } from '../../generated/prisma/client.ts';
import { inTransaction } from '../common/transaction.ts';
import { toCouponView } from './coupons.ts';
import { requestIdConflict } from './quota.ts';

export interface GrantInput {
  requestId: string;
  campaignId: string;
  customerId: string;
}

/** `<CAMPAIGN PREFIX>-<12 hex of sha256(campaign, request)>`: the same request always gets the same code. */
export function grantCouponCode(campaignId: string, requestId: string): string {
  const prefix = campaignId.toUpperCase().replace(/[^A-Z0-9]/g, '').slice(0, 12) || 'CAMPAIGN';
  const digest = createHash('sha256').update(`${campaignId}\n${requestId}`).digest('hex').slice(0, 12).toUpperCase();
  return `${prefix}-${digest}`;
}

export async function grantCoupon(db: Db, input: GrantInput): Promise<{ created: boolean; grant: ReturnType<typeof toGrantView> }> {
  return inTransaction(db, async (tx) => {
    // Serializes with a release of the same request id (which refuses once a grant exists).
    const [reservation] = await tx.$queryRaw<{ campaignId: string | null; customerId: string | null; status: string }[]>`
      SELECT campaign_id AS "campaignId", customer_id AS "customerId", status::text AS status
        FROM coupons_quota_reservations WHERE request_id = ${input.requestId} FOR UPDATE`;

    const existing = await tx.couponGrant.findUnique({ where: { requestId: input.requestId } });
    if (existing) {
      if (existing.campaignId !== input.campaignId || existing.customerId !== input.customerId) {
        throw requestIdConflict(input.requestId, existing);
      }
      return { created: false, grant: toGrantView(existing) };
    }

    if (!reservation || reservation.status === 'RELEASED') {
      throw conflict('no_quota_reservation', `request ${input.requestId} holds no quota reservation`, {
        reservationStatus: reservation?.status ?? null,
      });
    }
    if (reservation.campaignId !== input.campaignId || reservation.customerId !== input.customerId) {
      throw conflict('no_quota_reservation', `quota reservation ${input.requestId} is for another campaign or customer`, {
        campaignId: reservation.campaignId,
        customerId: reservation.customerId,
      });
    }

    const campaign = await tx.couponCampaign.findUniqueOrThrow({ where: { id: input.campaignId } });
    const couponCode = grantCouponCode(campaign.id, input.requestId);
    await tx.coupon.create({
      data: {
        code: couponCode,
        customerId: input.customerId,
        campaignId: campaign.id,
        kind: campaign.kind,
        value: campaign.value,
        currency: campaign.currency,
        minSpendMinor: campaign.minSpendMinor,
        validUntil: campaign.validUntil,
      },
    });
    const grant = await tx.couponGrant.create({
      data: { requestId: input.requestId, campaignId: campaign.id, customerId: input.customerId, couponCode },
    });
    return { created: true, grant: toGrantView(grant) };
  });
}

export async function getGrant(db: Db, requestId: string) {
  const grant = await db.couponGrant.findUnique({ where: { requestId } });
  if (!grant) throw notFound(`no grant for request ${requestId}`);
  return toGrantView(grant);
}

export async function getWallet(db: Db, customerId: string) {
  const coupons = await db.coupon.findMany({ where: { customerId }, orderBy: { code: 'asc' } });
  return { customerId, coupons: coupons.map((c) => ({ ...toCouponView(c), campaignId: c.campaignId })) };
}

function toGrantView(grant: CouponGrant) {
  const { requestId, couponCode, customerId, campaignId } = grant;
  return { requestId, couponCode, customerId, campaignId, grantedAt: grant.createdAt.toISOString() };
}
