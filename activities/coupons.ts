// Coupons service: lock a coupon for an order, then redeem it (paid) or unlock it (undo).
import { callService } from './http.ts';

export interface LockCouponInput {
  idempotencyKey: string;
  orderId: string;
  code: string;
  customerId: string;
  subtotalMinor: number;
  currency: string;
}
export interface LockCouponResult {
  discountMinor: number;
}
export interface CouponLockInput {
  idempotencyKey: string;
  orderId: string;
}

export function couponActivities(baseUrl: string) {
  const service = 'coupons';
  const lock = (orderId: string, action: string) => `/locks/${encodeURIComponent(orderId)}/${action}`;
  return {
    async lockCoupon({ idempotencyKey, ...request }: LockCouponInput): Promise<LockCouponResult> {
      const body = await callService<LockCouponResult>({ service, baseUrl, path: '/locks', body: request, idempotencyKey });
      return { discountMinor: body.discountMinor };
    },

    /** Safe before or without a lock: the service records a tombstone, so a late lock is refused. */
    async unlockCoupon({ idempotencyKey, orderId }: CouponLockInput): Promise<void> {
      await callService({ service, baseUrl, path: lock(orderId, 'unlock'), body: {}, idempotencyKey });
    },

    async redeemCoupon({ idempotencyKey, orderId }: CouponLockInput): Promise<void> {
      await callService({ service, baseUrl, path: lock(orderId, 'redeem'), body: {}, idempotencyKey });
    },
  };
}
