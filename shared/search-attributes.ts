// The workflows' custom search attributes: one list, registered on the dev server by the
// stack (`--search-attribute Name=Type`) and upserted by the workflow at each step.
// Workflow-safe. No personal data goes here: these are indexed and visible to operators.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = [
  { name: 'CheckoutStatus', type: 'Keyword' },
  { name: 'CheckoutStep', type: 'Keyword' },
  { name: 'OrderId', type: 'Keyword' },
  { name: 'AmountMinor', type: 'Int' },
  { name: 'RefundStatus', type: 'Keyword' },
] as const;

export const CheckoutStatusKey = defineSearchAttributeKey('CheckoutStatus', SearchAttributeType.KEYWORD);
export const CheckoutStepKey = defineSearchAttributeKey('CheckoutStep', SearchAttributeType.KEYWORD);
export const OrderIdKey = defineSearchAttributeKey('OrderId', SearchAttributeType.KEYWORD);
export const AmountMinorKey = defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT);
/** The Refund workflow's status (shared/refunds.ts RefundStatus), e.g. to list refunds waiting for an operator. */
export const RefundStatusKey = defineSearchAttributeKey('RefundStatus', SearchAttributeType.KEYWORD);

/** The typed keys, e.g. for `TestWorkflowEnvironment.createLocal({ server: { searchAttributes } })`. */
export const SEARCH_ATTRIBUTE_KEYS = [CheckoutStatusKey, CheckoutStepKey, OrderIdKey, AmountMinorKey, RefundStatusKey];
