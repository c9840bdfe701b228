// Coupon rules: who may use a coupon, and how much it takes off.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { Coupon } from '../../generated/prisma/client.ts';

export type InvalidCouponReason =
  | 'not_found'
  | 'expired'
  | 'wrong_customer'
  | 'currency_mismatch'
  | 'min_spend_not_met'
  | 'already_used';

export interface CouponUse {
  customerId: string;
  subtotalMinor: number;
  currency: string;
}

export function invalidCoupon(code: string, reason: InvalidCouponReason, message: string) {
  return conflict('invalid_coupon', `coupon ${code}: ${message}`, { reason, couponCode: code });
}

/** Throws 409 invalid_coupon naming the first rule the use breaks; returns the discount otherwise. */
export function discountFor(coupon: Coupon | undefined, code: string, use: CouponUse, now = new Date()): number {
  if (!coupon) throw invalidCoupon(code, 'not_found', 'no such coupon');
  if (coupon.validUntil && coupon.validUntil.getTime() <= now.getTime()) {
    throw invalidCoupon(code, 'expired', `expired at ${coupon.validUntil.toISOString()}`);
  }
  if (coupon.customerId !== null && coupon.customerId !== use.customerId) {
    throw invalidCoupon(code, 'wrong_customer', 'belongs to another customer');
  }
  if (coupon.currency !== use.currency) {
    throw invalidCoupon(code, 'currency_mismatch', `is in ${coupon.currency}, the order is in ${use.currency}`);
  }
  if (use.subtotalMinor < coupon.minSpendMinor) {
    throw invalidCoupon(code, 'min_spend_not_met', `needs a subtotal of at least ${coupon.minSpendMinor}`);
  }
  if (coupon.status !== 'AVAILABLE') throw invalidCoupon(code, 'already_used', 'is already in use or redeemed');

  const off = coupon.kind === 'FIXED' ? coupon.value : Math.floor((use.subtotalMinor * coupon.value) / 100);
  return Math.min(off, use.subtotalMinor);
}

export function toCouponView(coupon: Coupon) {
  return {
    code: coupon.code,
    customerId: coupon.customerId,
    kind: coupon.kind,
    value: coupon.value,
    currency: coupon.currency,
    minSpendMinor: coupon.minSpendMinor,
    validUntil: coupon.validUntil?.toISOString() ?? null,
    status: coupon.status,
    lockedBy: coupon.lockedBy,
  };
}

export async function getCoupon(db: Db, code: string) {
  const coupon = await db.coupon.findUnique({ where: { code } });
  if (!coupon) throw notFound(`unknown coupon ${code}`);
  return toCouponView(coupon);
}
