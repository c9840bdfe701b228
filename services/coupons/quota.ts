// Campaign quota reservations, keyed by the caller's request id: reserve (try) →
// confirm, or release (undo). Locks are always taken in the same order — the
// reservation row, then the customer's share of the campaign, then the campaign —
// and the counters only move by conditional updates, so neither the total quota
// nor the per-customer limit can be exceeded by concurrent requests (the campaign's
// CHECK constraint backs the total up).
// Anti-hanging: a release that finds no reservation leaves a RELEASED tombstone
// that refuses the late reserve.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { CouponQuotaReservationStatus } from '../../generated/prisma/client.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import { isOpen } from './campaigns.ts';

export interface QuotaReservationView {
  requestId: string;
  campaignId: string | null;
  customerId: string | null;
  status: CouponQuotaReservationStatus;
  /** true when released before anything was reserved */
  tombstone?: true;
}

export async function reserveQuota(
  db: Db,
  input: { campaignId: string; requestId: string; customerId: string },
): Promise<{ created: boolean; reservation: QuotaReservationView }> {
  return inTransaction(db, async (tx) => {
    const claimed = await tx.$executeRaw`
      INSERT INTO coupons_quota_reservations (request_id, campaign_id, customer_id, status, created_at, updated_at)
      VALUES (${input.requestId}, ${input.campaignId}, ${input.customerId}, 'RESERVED', now(), now())
      ON CONFLICT (request_id) DO NOTHING`;
    if (claimed === 0) {
      const existing = await reservationRow(tx, input.requestId);
      if (existing.status === 'RELEASED') throw reservationReleased(input.requestId);
      if (existing.campaignId !== input.campaignId || existing.customerId !== input.customerId) {
        throw requestIdConflict(input.requestId, existing);
      }
      return { created: false, reservation: existing };
    }

    // Any refusal below rolls back the claim, so a later retry of this request id starts afresh.
    const campaign = await tx.couponCampaign.findUnique({ where: { id: input.campaignId } });
    if (!campaign) throw notFound(`unknown campaign ${input.campaignId}`);
    if (!isOpen(campaign)) {
      throw conflict('campaign_closed', `campaign ${campaign.id} issues coupons only from ${campaign.validFrom.toISOString()} until ${campaign.validUntil.toISOString()}`, {
        validFrom: campaign.validFrom.toISOString(),
        validUntil: campaign.validUntil.toISOString(),
      });
    }

    await tx.$executeRaw`
      INSERT INTO coupons_campaign_customers (campaign_id, customer_id, reserved, confirmed, updated_at)
      VALUES (${campaign.id}, ${input.customerId}, 0, 0, now())
      ON CONFLICT (campaign_id, customer_id) DO NOTHING`;
    const withinLimit = await tx.$executeRaw`
      UPDATE coupons_campaign_customers SET reserved = reserved + 1, updated_at = now()
       WHERE campaign_id = ${campaign.id} AND customer_id = ${input.customerId}
         AND reserved + confirmed < ${campaign.perCustomerLimit}`;
    if (withinLimit === 0) {
      throw conflict('customer_limit_reached', `customer ${input.customerId} already has ${campaign.perCustomerLimit} coupon(s) from campaign ${campaign.id}`, {
        perCustomerLimit: campaign.perCustomerLimit,
      });
    }

    const withinQuota = await tx.$executeRaw`
      UPDATE coupons_campaigns SET reserved = reserved + 1, updated_at = now()
       WHERE id = ${campaign.id} AND reserved + confirmed < total_quota`;
    if (withinQuota === 0) {
      throw conflict('quota_exhausted', `campaign ${campaign.id} has no quota left`, { totalQuota: campaign.totalQuota });
    }
    return {
      created: true,
      reservation: { requestId: input.requestId, campaignId: campaign.id, customerId: input.customerId, status: 'RESERVED' },
    };
  });
}

export async function confirmQuota(db: Db, requestId: string): Promise<QuotaReservationView> {
  return inTransaction(db, async (tx) => {
    const reservation = await reservationRow(tx, requestId);
    if (reservation.status === 'CONFIRMED') return reservation;
    if (reservation.status === 'RELEASED') throw reservationReleased(requestId);
    await moveCounters(tx, reservation, 'confirm');
    return setStatus(tx, reservation, 'CONFIRMED');
  });
}

export async function releaseQuota(db: Db, requestId: string): Promise<QuotaReservationView> {
  return inTransaction(db, async (tx) => {
    const tombstone = await tx.$executeRaw`
      INSERT INTO coupons_quota_reservations (request_id, campaign_id, customer_id, status, created_at, updated_at)
      VALUES (${requestId}, NULL, NULL, 'RELEASED', now(), now())
      ON CONFLICT (request_id) DO NOTHING`;
    if (tombstone === 1) return { requestId, campaignId: null, customerId: null, status: 'RELEASED', tombstone: true };

    const reservation = await reservationRow(tx, requestId);
    if (reservation.status === 'RELEASED') return reservation;
    if (reservation.status === 'CONFIRMED') {
      throw conflict('already_confirmed', `quota reservation ${requestId} is already confirmed`);
    }
    // A granted coupon holds its quota: giving the quota back would let the campaign issue more than its total.
    const grant = await tx.couponGrant.findUnique({ where: { requestId } });
    if (grant) {
      throw conflict('already_granted', `quota reservation ${requestId} was already granted as coupon ${grant.couponCode}`, {
        couponCode: grant.couponCode,
      });
    }
    await moveCounters(tx, reservation, 'release');
    return setStatus(tx, reservation, 'RELEASED');
  });
}

export async function getQuotaReservation(db: Db, requestId: string): Promise<QuotaReservationView> {
  const row = await db.couponQuotaReservation.findUnique({ where: { requestId } });
  if (!row) throw notFound(`no quota reservation ${requestId}`);
  return view(row);
}

/** The reservation row, locked until the transaction ends; grants and releases of one request id are serialized on it. */
export async function reservationRow(tx: Tx, requestId: string): Promise<QuotaReservationView> {
  const [row] = await tx.$queryRaw<{ requestId: string; campaignId: string | null; customerId: string | null; status: CouponQuotaReservationStatus }[]>`
    SELECT request_id AS "requestId", campaign_id AS "campaignId", customer_id AS "customerId", status::text AS status
      FROM coupons_quota_reservations WHERE request_id = ${requestId} FOR UPDATE`;
  if (!row) throw notFound(`no quota reservation ${requestId}`);
  return view(row);
}

async function moveCounters(tx: Tx, reservation: QuotaReservationView, move: 'confirm' | 'release'): Promise<void> {
  const { campaignId, customerId } = reservation;
  const confirmed = move === 'confirm' ? 1 : 0;
  const released = move === 'release' ? 1 : 0;
  await tx.$executeRaw`
    UPDATE coupons_campaign_customers SET reserved = reserved - 1, confirmed = confirmed + ${confirmed}, updated_at = now()
     WHERE campaign_id = ${campaignId} AND customer_id = ${customerId}`;
  await tx.$executeRaw`
    UPDATE coupons_campaigns
       SET reserved = reserved - 1, confirmed = confirmed + ${confirmed}, released = released + ${released}, updated_at = now()
     WHERE id = ${campaignId}`;
}

async function setStatus(tx: Tx, reservation: QuotaReservationView, status: CouponQuotaReservationStatus): Promise<QuotaReservationView> {
  await tx.couponQuotaReservation.update({ where: { requestId: reservation.requestId }, data: { status } });
  return { ...reservation, status };
}

function view(row: { requestId: string; campaignId: string | null; customerId: string | null; status: CouponQuotaReservationStatus }): QuotaReservationView {
  const { requestId, campaignId, customerId, status } = row;
  return { requestId, campaignId, customerId, status, ...(campaignId === null ? { tombstone: true as const } : {}) };
}

function reservationReleased(requestId: string) {
  return conflict('reservation_released', `quota reservation ${requestId} was already released`);
}

export function requestIdConflict(requestId: string, existing: { campaignId: string | null; customerId: string | null }) {
  return conflict('request_id_conflict', `request ${requestId} was already used for another campaign or customer`, {
    campaignId: existing.campaignId,
    customerId: existing.customerId,
  });
}
