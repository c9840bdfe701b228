// Everything the worker bundles: one export per workflow type.
export { checkout } from './checkout.ts';
export { reconciliation, mismatchResolution } from './reconciliation.ts';
export { refund } from './refund.ts';
export { couponIssuance } from './coupon-issuance.ts';
export { couponDistribution, couponDistributionBatch } from './coupon-distribution.ts';
