// Webhook events: written in the same transaction as the status change they
// announce, each with one delivery row, so an outcome is never decided without
// its notification being queued. The body is stored as the exact text every
// delivery sends (the signature covers those bytes).
import type { PspEventType } from '../../shared/payments.ts';
import type { Tx } from '../common/transaction.ts';
import { newId } from './ids.ts';

/** Refund outcomes; their `data` describes the refund, whose `reference` is the merchant's refund id. */
export type RefundEventType = 'refund.succeeded' | 'refund.failed';

export interface EventPayment {
  id: string;
  merchantReference: string;
  status: string;
  currency: string;
}

export interface EventRefund {
  id: string;
  paymentId: string;
  reference: string;
  status: string;
  amountMinor: number;
  currency: string;
  failureReason: string | null;
}

/** `amountMinor` is the amount the event is about: authorized, captured, voided or refunded. */
export async function recordEvent(tx: Tx, payment: EventPayment, type: PspEventType, amountMinor: number, deliveryDelayMs: number) {
  const data = { paymentId: payment.id, reference: payment.merchantReference, status: payment.status, amountMinor, currency: payment.currency };
  await insertEvent(tx, payment.id, type, data, deliveryDelayMs);
}

export async function recordRefundEvent(tx: Tx, refund: EventRefund, type: RefundEventType, deliveryDelayMs: number) {
  const { id: refundId, paymentId, reference, status, amountMinor, currency, failureReason } = refund;
  const data = { refundId, paymentId, reference, status, amountMinor, currency, failureReason };
  await insertEvent(tx, paymentId, type, data, deliveryDelayMs);
}

async function insertEvent(tx: Tx, paymentId: string, type: string, data: Record<string, unknown>, deliveryDelayMs: number) {
  const id = newId('evt');
  const createdAt = new Date();
  const body = JSON.stringify({ id, type, createdAt: createdAt.toISOString(), data });
  await tx.pspEvent.create({ data: { id, paymentId, type, body, createdAt } });
  await tx.$executeRaw`
    INSERT INTO psp_deliveries (event_id, status, attempts, next_attempt_at, created_at, updated_at)
    VALUES (${id}, 'PENDING', 0, now() + make_interval(secs => ${deliveryDelayMs / 1000}), now(), now())`;
}
