// The workflow types as the worker registers them (workflows/index.ts: one export per type), for
// everything that starts, describes or tells runs apart by type outside the workflow code itself.
// Workflow-safe. tests/workflow-types.test.ts checks each one against workflows/index.ts.
export const WORKFLOW_TYPES = {
  checkout: 'checkout',
  refund: 'refund',
  reconciliation: 'reconciliation',
  mismatchResolution: 'mismatchResolution',
  couponIssuance: 'couponIssuance',
  couponDistribution: 'couponDistribution',
  couponDistributionBatch: 'couponDistributionBatch',
} as const;
