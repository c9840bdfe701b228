// Coupon issuance against the coupons service: reserve quota → grant into the wallet → confirm,
// or release the reservation. Every call is keyed by the issuance's requestId, so a retry (or a
// restarted distribution batch) finds what the first attempt did instead of doing it twice.
// Plus the distribution's recipient list, which lives in our own table (the API writes it).
import type { Db } from '../lib/db.ts';
import { callService, callServiceUnlessMissing } from './http.ts';

export interface CouponRequest {
  requestId: string;
  campaignId: string;
  customerId: string;
}
export interface CouponGrant {
  requestId: string;
  couponCode: string;
  customerId: string;
  campaignId: string;
}
export interface QuotaReservationInput {
  requestId: string;
}
export interface RecipientPageInput {
  distributionId: string;
  /** Position of the first recipient (0-based). */
  offset: number;
  limit: number;
}

export function couponIssuanceActivities(baseUrl: string) {
  const service = 'coupons';
  const reservation = (requestId: string, action: string) => `/quota-reservations/${encodeURIComponent(requestId)}/${action}`;
  const findGrant = (requestId: string) =>
    callServiceUnlessMissing<CouponGrant>({ service, baseUrl, path: `/wallet/grants/${encodeURIComponent(requestId)}`, method: 'GET' });

  return {
    /** Refusals are typed and final: QuotaExhausted, CustomerLimitReached, CampaignClosed (shared/errors.ts). */
    async reserveCouponQuota({ requestId, campaignId, customerId }: CouponRequest): Promise<void> {
      await callService({
        service,
        baseUrl,
        path: `/campaigns/${encodeURIComponent(campaignId)}/quota-reservations`,
        body: { requestId, customerId },
        idempotencyKey: `reserve:${requestId}`,
      });
    },

    /**
     * Runs on the coupon-grants task queue (rate-limited across all workers). Each attempt first
     * asks whether an earlier attempt — one that timed out on our side — already granted it.
     */
    async grantCoupon({ requestId, campaignId, customerId }: CouponRequest): Promise<CouponGrant> {
      const existing = await findGrant(requestId);
      if (existing) return pickGrant(existing);
      const granted = await callService<CouponGrant>({
        service,
        baseUrl,
        path: '/wallet/grants',
        body: { requestId, campaignId, customerId },
        idempotencyKey: `grant:${requestId}`,
      });
      return pickGrant(granted);
    },

    /** The grant made under this requestId, or null: asked once more before giving the quota back. */
    async findCouponGrant({ requestId }: QuotaReservationInput): Promise<CouponGrant | null> {
      const existing = await findGrant(requestId);
      return existing ? pickGrant(existing) : null;
    },

    async confirmCouponQuota({ requestId }: QuotaReservationInput): Promise<void> {
      await callService({ service, baseUrl, path: reservation(requestId, 'confirm'), body: {}, idempotencyKey: `confirm:${requestId}` });
    },

    /** Safe when nothing was reserved: the service leaves a tombstone so a late reservation is refused. */
    async releaseCouponQuota({ requestId }: QuotaReservationInput): Promise<void> {
      await callService({ service, baseUrl, path: reservation(requestId, 'release'), body: {}, idempotencyKey: `release:${requestId}` });
    },
  };
}

export function distributionRecipientActivities(db: Db) {
  return {
    async countDistributionRecipients({ distributionId }: { distributionId: string }): Promise<number> {
      return db.distributionRecipient.count({ where: { distributionId } });
    },

    /** Customer ids at positions [offset, offset + limit), in order. */
    async readDistributionRecipients({ distributionId, offset, limit }: RecipientPageInput): Promise<string[]> {
      const rows = await db.distributionRecipient.findMany({
        where: { distributionId, position: { gte: offset, lt: offset + limit } },
        orderBy: { position: 'asc' },
        select: { customerId: true },
      });
      return rows.map((row) => row.customerId);
    },
  };
}

function pickGrant(grant: CouponGrant): CouponGrant {
  return { requestId: grant.requestId, couponCode: grant.couponCode, customerId: grant.customerId, campaignId: grant.campaignId };
}

export type CouponIssuanceActivities = ReturnType<typeof couponIssuanceActivities>;
export type DistributionRecipientActivities = ReturnType<typeof distributionRecipientActivities>;
