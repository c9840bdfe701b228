// The checkout workflow's contract: input, result, state, signals and queries.
// Imported by the workflow, the API and the tests, so kept free of Node imports.
import type { SearchAttributePair } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CardBrand, PaymentStatus } from './payments.ts';
import type { RefundStatus } from './refunds.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  CustomerIdKey,
  DEFAULT_REGION,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from './search-attributes.ts';

export interface CheckoutLine {
  sku: string;
  quantity: number;
  /**
   * The unit price the shop showed, a quote only: the orders service prices the order from the
   * catalogue and refuses it (price_changed) if this differs. The API passes the catalogue's price.
   */
  unitPriceMinor?: number;
}

/**
 * The card as the workflow knows it: the provider's opaque token (`pm_…`, from the provider's
 * `POST /v1/payment_methods`) and what a person needs to recognise the card. The card number
 * itself never enters a workflow: the API exchanges it for the token before the run starts.
 */
export interface PaymentMethod {
  /** The provider's payment-method token: the only thing that can be charged. */
  token: string;
  brand: CardBrand;
  /** The card number's last four digits. */
  last4: string;
}

export interface CheckoutInput {
  /** The client's idempotency key; the workflow id and order id derive from it. */
  checkoutKey: string;
  /** An opaque account id (never an email or a name: it is shown to operators and indexed). */
  customerId: string;
  /** The sales region, a lowercase code like `eu` or `us-east` (default DEFAULT_REGION). */
  region?: string;
  currency: string;
  lines: CheckoutLine[];
  couponCode?: string;
  paymentMethod: PaymentMethod;
  /**
   * How long the checkout waits for the payment to be decided. Omit it: the defaults suit a
   * real provider. Tests and demos shorten it; the HTTP API never passes it.
   */
  timing?: CheckoutTiming;
}

export interface CheckoutTiming {
  /** From the authorization request until the payment is voided if still undecided (default 10 min). */
  paymentDeadlineMs?: number;
  /** First wait for a provider notification before asking the provider (default 3 s). */
  firstPaymentCheckMs?: number;
  /** The wait doubles after every inconclusive check, up to this (default 30 s). */
  maxPaymentCheckIntervalMs?: number;
}

/**
 * Where the checkout stands with the provider. A notification only prompts a check: `status`
 * is always what the provider itself answered, and `source` says what prompted that answer.
 */
export interface PaymentProgress {
  status: PaymentStatus | null;
  /**
   * `provider_answer`: the authorize/capture call answered with a decision; `signal`: a
   * notification prompted the check that found it; `active_query`: we asked on our own.
   */
  source: 'provider_answer' | 'signal' | 'active_query' | null;
  /** Distinct provider notifications received for this order (duplicates counted once). */
  eventsReceived: number;
  /** Times the checkout asked the provider for the payment's status. */
  checks: number;
  /** When an undecided authorization is given up and voided (ISO 8601); null outside that wait. */
  deadline: string | null;
  refundedMinor: number;
}

export type CheckoutStep =
  | 'CREATING_ORDER'
  | 'RESERVING_STOCK'
  | 'LOCKING_COUPON'
  | 'AUTHORIZING_PAYMENT'
  /** The provider has the authorization request and has not decided yet (the checkout waits, then asks). */
  | 'AWAITING_PAYMENT'
  | 'CAPTURING_PAYMENT'
  | 'FULFILLING'
  | 'COMPENSATING'
  | 'DONE';

export type CheckoutStatus = 'RUNNING' | 'PAID' | 'CANCELLED';

export interface CompensationRecord {
  name: string;
  status: 'PENDING' | 'DONE';
}

export interface CheckoutState {
  checkoutId: string;
  orderId: string;
  customerId: string;
  status: CheckoutStatus;
  step: CheckoutStep;
  orderStatus: 'PENDING' | 'AWAITING_PAYMENT' | 'PAID' | 'CANCELLED' | null;
  currency: string;
  subtotalMinor: number;
  discountMinor: number;
  totalMinor: number;
  paymentId: string | null;
  capturedMinor: number;
  payment: PaymentProgress;
  cancelReason: string | null;
  compensations: CompensationRecord[];
  /** The Refund workflow that gave a captured payment back when the checkout was cancelled after all. */
  refund: CheckoutRefund | null;
}

export interface CheckoutRefund {
  /** The Refund workflow's id (= our refund id): query it for the details, signal it if it needs an operator. */
  workflowId: string;
  /** RUNNING while the checkout waits for it; then its final status (SUCCEEDED, REFUNDED_MANUALLY, REJECTED, ABANDONED). */
  status: RefundStatus | 'RUNNING';
  amountMinor: number | null;
  failure: string | null;
}

export type CheckoutResult = CheckoutState & { status: 'PAID' | 'CANCELLED' };

export interface CancelRequest {
  reason: string;
}

export const cancelCheckoutSignal = defineSignal<[CancelRequest]>('cancel');
export const checkoutStateQuery = defineQuery<CheckoutState>('state');

export function checkoutWorkflowId(checkoutKey: string): string {
  return `checkout-${checkoutKey}`;
}

export function orderIdFor(checkoutKey: string): string {
  return `order-${checkoutKey}`;
}

/** The request id of the refund a cancelled checkout starts for a captured payment (one per checkout). */
export function refundRequestIdFor(checkoutKey: string): string {
  return `${checkoutKey}-cancelled-checkout`;
}

/** The checkout that owns an order (inverse of orderIdFor), or null for foreign references. */
export function checkoutWorkflowIdForOrder(orderId: string): string | null {
  return orderId.startsWith('order-') ? checkoutWorkflowId(orderId.slice('order-'.length)) : null;
}

/**
 * The search attributes a checkout starts with, so it is findable before its first workflow
 * task; the workflow upserts them as it moves (AmountMinor becomes the order service's total).
 */
export function checkoutStartAttributes(input: CheckoutInput): SearchAttributePair[] {
  return [
    { key: FlowStatusKey, value: 'RUNNING' satisfies CheckoutStatus },
    { key: CheckoutStepKey, value: 'CREATING_ORDER' satisfies CheckoutStep },
    { key: NeedsAttentionKey, value: false },
    { key: OrderIdKey, value: orderIdFor(input.checkoutKey) },
    { key: CustomerIdKey, value: input.customerId },
    // the quoted subtotal (the API quotes the catalogue's prices); the order service's total replaces it
    { key: AmountMinorKey, value: input.lines.reduce((sum, l) => sum + l.quantity * (l.unitPriceMinor ?? 0), 0) },
    { key: CurrencyKey, value: input.currency },
    { key: RegionKey, value: input.region ?? DEFAULT_REGION },
  ];
}

/**
 * The `cancel` signal as an Update (Temporal keeps the names apart): answers the checkout's state
 * once the cancel has taken effect (COMPENSATING); refused with `capture_started` once the money
 * moves, `already_cancelling` when the checkout is already being cancelled.
 */
export const cancelCheckoutUpdate = defineUpdate<CheckoutState, [CancelRequest & { by: string }]>('cancel');
