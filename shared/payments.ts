// Payment notifications: what the webhook endpoint tells a checkout, and what the
// provider's truth looks like. Workflow-safe: no Node imports.
import { defineSignal } from '@temporalio/workflow';

/** Our payment record's status (payments service), mirroring the provider's. */
export type PaymentStatus =
  | 'AUTHORIZATION_PENDING'
  | 'AUTHORIZED'
  | 'DECLINED'
  | 'CAPTURE_PENDING'
  | 'CAPTURED'
  | 'VOIDED'
  | 'REFUNDED';

/** The card's network, as the provider reports it for a payment-method token. */
export const CARD_BRANDS = ['visa', 'mastercard', 'amex', 'discover', 'unknown'] as const;
export type CardBrand = (typeof CARD_BRANDS)[number];

/** The shape of a payment-method token the provider issues (`pm_` and letters/digits). */
export const PAYMENT_METHOD_TOKEN = /^pm_[A-Za-z0-9]{8,64}$/;

/** Provider event types delivered to POST /webhooks/psp. */
export type PspEventType =
  | 'payment.authorized'
  | 'payment.declined'
  | 'payment.captured'
  | 'payment.voided'
  | 'payment.refunded';

/**
 * Sent by the webhook endpoint to the checkout that owns the payment, after the event
 * is durably recorded. It is only a nudge: the workflow confirms the outcome by asking
 * the payments service (which asks the provider) before acting on it, so a duplicate,
 * late or out-of-order event can never move a checkout the wrong way.
 */
export interface PaymentEvent {
  eventId: string;
  type: PspEventType;
  pspPaymentId: string;
  orderId: string;
}

export const paymentEventSignal = defineSignal<[PaymentEvent]>('paymentEvent');
