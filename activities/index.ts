// All checkout activities, bound to the services' URLs. Plain async functions: they need no
// Temporal activity context, so the API and the benchmark can call them directly too.
import type { ServiceUrls } from '../lib/config.ts';
import { couponActivities } from './coupons.ts';
import { inventoryActivities } from './inventory.ts';
import { loyaltyActivities } from './loyalty.ts';
import { orderActivities } from './orders.ts';
import { paymentActivities } from './payments.ts';
import { refundActivities } from './refunds.ts';
import { refundChildActivities } from './refund-child.ts';

export function createActivities(urls: ServiceUrls) {
  return {
    ...orderActivities(urls.orders),
    ...inventoryActivities(urls.inventory),
    ...couponActivities(urls.coupons),
    ...paymentActivities(urls.payments),
    ...loyaltyActivities(urls.loyalty),
    ...refundActivities(urls),
    ...refundChildActivities(),
  };
}

export type CheckoutActivities = ReturnType<typeof createActivities>;

export type * from './orders.ts';
export type * from './inventory.ts';
export type * from './coupons.ts';
export type * from './coupons-issuance.ts';
export type * from './payments.ts';
export type * from './loyalty.ts';
export type * from './reconciliation.ts';
export type * from './refunds.ts';
export type * from './refund-child.ts';
