// The workflows' custom search attributes: one list, registered on the dev server by the
// stack and the tests (`--search-attribute Name=Type`), set at start by whoever starts the
// workflow (the API, a parent workflow, a schedule) and upserted by the workflow as it moves.
// Workflow-safe. No personal data goes here: these are indexed and visible to every
// operator. Customer ids are opaque account ids (the API refuses anything that looks like
// an email); names, emails, addresses and card numbers never appear.
//
// What an operator types in the Web UI's List Filter, for example:
//   NeedsAttention = true AND ExecutionStatus = "Running"        everything waiting for a person
//   WorkflowType = "checkout" AND CheckoutStep = "AWAITING_PAYMENT" AND StartTime < "<10 min ago>"
//   FlowStatus = "NEEDS_OPERATOR"                                 refunds the provider refused
//   OrderId = "o-123"                                             every run about one order
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = [
  { name: 'FlowStatus', type: 'Keyword' },
  { name: 'CheckoutStep', type: 'Keyword' },
  { name: 'OrderId', type: 'Keyword' },
  { name: 'CustomerId', type: 'Keyword' },
  { name: 'AmountMinor', type: 'Int' },
  { name: 'Currency', type: 'Keyword' },
  { name: 'NeedsAttention', type: 'Bool' },
  { name: 'Region', type: 'Keyword' },
] as const;

/**
 * Every workflow: its status in its own vocabulary (checkout RUNNING/PAID/CANCELLED, refund
 * shared/refunds.ts RefundStatus, mismatch OPEN/RESOLVED, ...). WorkflowType tells which.
 */
export const FlowStatusKey = defineSearchAttributeKey('FlowStatus', SearchAttributeType.KEYWORD);
/** The checkout's current step (shared/checkout.ts CheckoutStep). */
export const CheckoutStepKey = defineSearchAttributeKey('CheckoutStep', SearchAttributeType.KEYWORD);
/** Checkouts, refunds and mismatches about one order. */
export const OrderIdKey = defineSearchAttributeKey('OrderId', SearchAttributeType.KEYWORD);
/** The opaque customer account id (checkouts, coupon issuance; refunds when known). */
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
/** The money at stake, in minor units of Currency. */
export const AmountMinorKey = defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT);
export const CurrencyKey = defineSearchAttributeKey('Currency', SearchAttributeType.KEYWORD);
/**
 * Every workflow: true exactly while the run waits for a person (an approval, an operator
 * action, a step refused by a service and retried on a slow timer, a payment or refund the
 * provider has not settled long past its deadline, an open mismatch).
 * The operations page lists `NeedsAttention = true AND ExecutionStatus = "Running"`.
 */
export const NeedsAttentionKey = defineSearchAttributeKey('NeedsAttention', SearchAttributeType.BOOL);
/** The sales region the order belongs to (checkout request's `region`, default DEFAULT_REGION); refunds inherit it. */
export const RegionKey = defineSearchAttributeKey('Region', SearchAttributeType.KEYWORD);

/** The region of a checkout that names none. */
export const DEFAULT_REGION = 'eu';

/** The typed keys, e.g. for `TestWorkflowEnvironment.createLocal({ server: { searchAttributes } })`. */
export const SEARCH_ATTRIBUTE_KEYS = [
  FlowStatusKey,
  CheckoutStepKey,
  OrderIdKey,
  CustomerIdKey,
  AmountMinorKey,
  CurrencyKey,
  NeedsAttentionKey,
  RegionKey,
];
