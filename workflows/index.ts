// Everything the worker bundles: one export per workflow type.
export { checkout } from './checkout.ts';
export { reconciliation, mismatchResolution } from './reconciliation.ts';
export { refund } from './refund.ts';
