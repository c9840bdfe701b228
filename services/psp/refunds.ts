// The provider's refunds, asynchronous like its payments: a refund is taken on
// PENDING with its amount held against the capture at once (under the payment's
// row lock, so pending + succeeded refunds never exceed the capture), and decided
// `processingDelayMs` later by `decideDueRefunds`: SUCCEEDED moves the money (one
// REFUND transaction), FAILED releases the hold. Each outcome is announced by a
// refund.succeeded / refund.failed webhook whose `reference` is the merchant's
// refund id. One refund per (payment, Idempotency-Key): a request repeated after
// its idempotency record is gone still lands on the same refund.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { PspRefund, PspRefundStatus } from '../../generated/prisma/client.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import type { ChaosSettings } from './chaos.ts';
import { recordRefundEvent } from './events.ts';
import { newId } from './ids.ts';
import { lockPayment, recordTransaction } from './payments.ts';

// Decisions taken per transaction; the rest wait for the next round.
const DECISION_BATCH = 50;

export interface RefundRequest {
  amountMinor: number;
  /** The merchant's refund id, echoed in the refund's webhooks. */
  reference: string;
}

export type RefundView = ReturnType<typeof toView>;

/** `created` is false when this Idempotency-Key already made a refund of this payment (answered with its state). */
export async function requestRefund(
  db: Db,
  paymentId: string,
  request: RefundRequest,
  requestKey: string,
  chaos: ChaosSettings,
): Promise<{ created: boolean; refund: RefundView }> {
  const { refundId, created } = await inTransaction(db, async (tx) => {
    const payment = await lockPayment(tx, paymentId);
    const earlier = await tx.pspRefund.findUnique({ where: { paymentId_requestKey: { paymentId, requestKey } } });
    if (earlier) return { refundId: earlier.id, created: false };
    if (payment.status !== 'CAPTURED' && payment.status !== 'REFUNDED') {
      throw conflict('not_captured', `cannot refund a ${payment.status.toLowerCase()} payment`, { status: payment.status });
    }
    const refundableMinor = payment.capturedMinor - payment.refundedMinor - payment.refundPendingMinor;
    if (request.amountMinor > refundableMinor) {
      throw conflict('refund_exceeds_captured', `cannot refund ${request.amountMinor}, only ${refundableMinor} of the capture is left`, {
        capturedMinor: payment.capturedMinor,
        refundedMinor: payment.refundedMinor,
        refundPendingMinor: payment.refundPendingMinor,
        refundableMinor,
      });
    }
    const id = newId('re');
    // like a decline, the outcome is known at once but told only when decided
    const failureReason = chaos.rejectRefunds ? 'refund_rejected' : null;
    await tx.$executeRaw`
      INSERT INTO psp_refunds (id, payment_id, reference, request_key, amount_minor, status, failure_reason, decide_at, created_at, updated_at)
      VALUES (${id}, ${paymentId}, ${request.reference}, ${requestKey}, ${request.amountMinor}, 'PENDING', ${failureReason},
              now() + make_interval(secs => ${chaos.processingDelayMs / 1000}), now(), now())`;
    await tx.$executeRaw`
      UPDATE psp_payments SET refund_pending_minor = refund_pending_minor + ${request.amountMinor}, updated_at = now() WHERE id = ${paymentId}`;
    return { refundId: id, created: true };
  });
  return { created, refund: await getRefund(db, refundId) };
}

/**
 * Decides the pending refunds that are due. Refund rows are claimed with SKIP LOCKED
 * (several PSP instances share the work without deciding twice); their payments are
 * then locked in id order, so two instances never deadlock.
 */
export async function decideDueRefunds(db: Db, chaos: ChaosSettings): Promise<number> {
  return inTransaction(db, async (tx) => {
    const due = await tx.$queryRaw<DueRefund[]>`
      SELECT id, payment_id AS "paymentId", reference, amount_minor AS "amountMinor", failure_reason AS "failureReason"
        FROM psp_refunds
       WHERE decide_at <= now() AND status = 'PENDING'
       ORDER BY decide_at
       LIMIT ${DECISION_BATCH}
         FOR UPDATE SKIP LOCKED`;
    due.sort((a, b) => a.paymentId.localeCompare(b.paymentId) || a.id.localeCompare(b.id));
    for (const refund of due) await decide(tx, refund, chaos);
    return due.length;
  });
}

type DueRefund = Pick<PspRefund, 'id' | 'paymentId' | 'reference' | 'amountMinor' | 'failureReason'>;

async function decide(tx: Tx, refund: DueRefund, chaos: ChaosSettings) {
  const payment = await lockPayment(tx, refund.paymentId);
  const status: PspRefundStatus = refund.failureReason === null ? 'SUCCEEDED' : 'FAILED';
  await tx.$executeRaw`
    UPDATE psp_refunds SET status = ${status}::"PspRefundStatus", decide_at = NULL, updated_at = now() WHERE id = ${refund.id}`;
  if (status === 'SUCCEEDED') {
    await tx.$executeRaw`
      UPDATE psp_payments
         SET refund_pending_minor = refund_pending_minor - ${refund.amountMinor},
             refunded_minor = refunded_minor + ${refund.amountMinor},
             status = CASE WHEN refunded_minor + ${refund.amountMinor} = captured_minor THEN 'REFUNDED'::"PspPaymentStatus" ELSE status END,
             updated_at = now()
       WHERE id = ${payment.id}`;
    await recordTransaction(tx, payment.id, 'REFUND', refund.amountMinor);
  } else {
    await tx.$executeRaw`
      UPDATE psp_payments SET refund_pending_minor = refund_pending_minor - ${refund.amountMinor}, updated_at = now() WHERE id = ${payment.id}`;
  }
  await recordRefundEvent(
    tx,
    { ...refund, status, currency: payment.currency },
    status === 'SUCCEEDED' ? 'refund.succeeded' : 'refund.failed',
    chaos.deliveryDelayMs,
  );
}

export async function getRefund(db: Db, refundId: string): Promise<RefundView> {
  const refund = await db.pspRefund.findUnique({ where: { id: refundId }, include: { payment: { select: { currency: true } } } });
  if (!refund) throw notFound(`no refund ${refundId}`);
  return toView(refund);
}

function toView(refund: PspRefund & { payment: { currency: string } }) {
  return {
    refundId: refund.id,
    paymentId: refund.paymentId,
    reference: refund.reference,
    amountMinor: refund.amountMinor,
    currency: refund.payment.currency,
    status: refund.status,
    // the reason is only told once the refund is decided
    failureReason: refund.status === 'FAILED' ? refund.failureReason : null,
    createdAt: refund.createdAt.toISOString(),
  };
}
