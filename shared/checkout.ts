// The checkout workflow's contract: input, result, state, signals and queries.
// Imported by the workflow, the API and the tests, so kept free of Node imports.
import { defineQuery, defineSignal } from '@temporalio/workflow';

export interface CheckoutLine {
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

/**
 * A card from the payment-provider simulator's test range (see services/psp).
 * A production deployment would pass the provider's token instead of a number.
 */
export interface PaymentMethod {
  type: 'card';
  number: string;
}

export interface CheckoutInput {
  /** The client's idempotency key; the workflow id and order id derive from it. */
  checkoutKey: string;
  customerId: string;
  currency: string;
  lines: CheckoutLine[];
  couponCode?: string;
  paymentMethod: PaymentMethod;
}

export type CheckoutStep =
  | 'CREATING_ORDER'
  | 'RESERVING_STOCK'
  | 'LOCKING_COUPON'
  | 'AUTHORIZING_PAYMENT'
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
  cancelReason: string | null;
  compensations: CompensationRecord[];
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

/** The checkout that owns an order (inverse of orderIdFor), or null for foreign references. */
export function checkoutWorkflowIdForOrder(orderId: string): string | null {
  return orderId.startsWith('order-') ? checkoutWorkflowId(orderId.slice('order-'.length)) : null;
}
