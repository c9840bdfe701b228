// Webhook events: written in the same transaction as the status change they
// announce, each with one delivery row, so an outcome is never decided without
// its notification being queued. The body is stored as the exact text every
// delivery sends (the signature covers those bytes).
import type { PspEventType } from '../../shared/payments.ts';
import type { Tx } from '../common/transaction.ts';
import { newId } from './ids.ts';

export interface EventPayment {
  id: string;
  merchantReference: string;
  status: string;
  currency: string;
}

/** `amountMinor` is the amount the event is about: authorized, captured, voided or refunded. */
export async function recordEvent(tx: Tx, payment: EventPayment, type: PspEventType, amountMinor: number, deliveryDelayMs: number) {
  const id = newId('evt');
  const createdAt = new Date();
  const body = JSON.stringify({
    id,
    type,
    createdAt: createdAt.toISOString(),
    data: { paymentId: payment.id, reference: payment.merchantReference, status: payment.status, amountMinor, currency: payment.currency },
  });
  await tx.pspEvent.create({ data: { id, paymentId: payment.id, type, body, createdAt } });
  await tx.$executeRaw`
    INSERT INTO psp_deliveries (event_id, status, attempts, next_attempt_at, created_at, updated_at)
    VALUES (${id}, 'PENDING', 0, now() + make_interval(secs => ${deliveryDelayMs / 1000}), now(), now())`;
}
