// Our refunds, keyed by our refund id (the Refund workflow's id). A refund's
// amount is held on the payment row first, by a conditional UPDATE that refuses it
// if pending + succeeded refunds would pass the capture, so concurrent refunds can
// never overshoot; only then is the provider asked, with the key
// refund:<refundId>:<attempt> and reference = refundId, so a retried request lands
// on the same provider refund. The provider decides later; `syncRefund` reads its
// truth and settles the refund once: SUCCEEDED moves the held amount to refunded,
// FAILED releases it. A FAILED refund may be retried (attempt + 1, held again) or
// recorded as paid outside the provider (SUCCEEDED_MANUALLY, counts as refunded).
// Every row change is conditional on the state (and attempt) it was read in, so a
// repeat or a concurrent call never settles or holds twice.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { PaymentRefund, PaymentRefundStatus, PaymentStatus } from '../../generated/prisma/client.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import { findPayment, providerRefused, refresh } from './payments.ts';
import type { PspClient, PspRefundBody } from './psp-client.ts';

export interface RefundRequest {
  orderId: string;
  refundId: string;
  amountMinor: number;
  reason: string;
}

export type RefundView = ReturnType<typeof toView>;

/** Holds the amount and asks the provider; `created` is false when this refund id is already known. */
export async function requestRefund(db: Db, psp: PspClient, input: RefundRequest): Promise<{ created: boolean; refund: RefundView }> {
  let payment = await findPayment(db, input.orderId);
  if (!payment) throw notFound(`no payment for order ${input.orderId}`);
  if (payment.status === 'CAPTURE_PENDING') payment = await refresh(db, psp, payment);

  const { created, refund } = await inTransaction(db, (tx) => holdNewRefund(tx, input));
  if (refund.orderId !== input.orderId) {
    throw conflict('refund_id_reused', `refund ${input.refundId} belongs to order ${refund.orderId}`, { orderId: refund.orderId });
  }
  // also finishes a refund whose provider call was lost (held, never taken on)
  const current = refund.status === 'PENDING' && refund.pspRefundId === null ? await askProvider(db, psp, refund) : refund;
  return { created, refund: toView(current) };
}

/** Asks the provider for the refund's truth and settles it when decided. Safe to repeat. */
export async function syncRefund(db: Db, psp: PspClient, refundId: string): Promise<RefundView> {
  const refund = await findRefund(db, refundId);
  if (refund.status !== 'PENDING') return toView(refund);
  if (refund.pspRefundId === null) return toView(await askProvider(db, psp, refund));

  const answer = await psp.getRefund(refund.pspRefundId);
  if (answer.status !== 200) throw providerRefused(answer);
  return toView(await applyProviderOutcome(db, refund, answer.body));
}

/** A FAILED refund is sent again: attempt + 1, the amount held again, a new provider refund. */
export async function retryRefund(db: Db, psp: PspClient, refundId: string): Promise<RefundView> {
  const refund = await inTransaction(db, async (tx) => {
    const failed = await lockRefund(tx, refundId);
    if (failed.status !== 'FAILED') throw illegalTransition(failed, 'retried');
    await holdAmount(tx, failed.orderId, failed.amountMinor);
    return tx.paymentRefund.update({
      where: { refundId },
      data: { status: 'PENDING', attempt: failed.attempt + 1, pspRefundId: null, failureReason: null },
    });
  });
  return toView(await askProvider(db, psp, refund));
}

/** A FAILED refund paid back outside the provider: SUCCEEDED_MANUALLY, counted as refunded. */
export async function recordManualRefund(db: Db, refundId: string, input: { reference: string; by: string }): Promise<RefundView> {
  return inTransaction(db, async (tx) => {
    const refund = await lockRefund(tx, refundId);
    if (refund.status === 'SUCCEEDED_MANUALLY' && refund.manualReference === input.reference) return toView(refund);
    if (refund.status !== 'FAILED') throw illegalTransition(refund, 'recorded as refunded manually');
    const counted = await tx.$executeRaw`
      UPDATE payments_payments
         SET refunded_minor = refunded_minor + ${refund.amountMinor},
             status = CASE WHEN refunded_minor + ${refund.amountMinor} = captured_minor THEN 'REFUNDED'::"PaymentStatus" ELSE status END,
             updated_at = now()
       WHERE order_id = ${refund.orderId} AND refunded_minor + refund_pending_minor + ${refund.amountMinor} <= captured_minor`;
    if (counted === 0) throw await whyNotHeld(tx, refund.orderId, refund.amountMinor);
    return toView(
      await tx.paymentRefund.update({
        where: { refundId },
        data: { status: 'SUCCEEDED_MANUALLY', manualReference: input.reference, manualBy: input.by },
      }),
    );
  });
}

export async function getRefund(db: Db, refundId: string): Promise<RefundView> {
  return toView(await findRefund(db, refundId));
}

/** Claims the refund id and holds its amount in one transaction: a refusal leaves nothing behind. */
async function holdNewRefund(tx: Tx, input: RefundRequest): Promise<{ created: boolean; refund: PaymentRefund }> {
  const claimed = await tx.$executeRaw`
    INSERT INTO payments_refunds (refund_id, order_id, amount_minor, reason, status, attempt, created_at, updated_at)
    VALUES (${input.refundId}, ${input.orderId}, ${input.amountMinor}, ${input.reason}, 'PENDING', 1, now(), now())
    ON CONFLICT (refund_id) DO NOTHING`;
  if (claimed === 0) return { created: false, refund: await tx.paymentRefund.findUniqueOrThrow({ where: { refundId: input.refundId } }) };
  await holdAmount(tx, input.orderId, input.amountMinor);
  return { created: true, refund: await tx.paymentRefund.findUniqueOrThrow({ where: { refundId: input.refundId } }) };
}

/** The cap: concurrent holds queue on the payment row and each re-checks the sum it finds. */
async function holdAmount(tx: Tx, orderId: string, amountMinor: number): Promise<void> {
  const held = await tx.$executeRaw`
    UPDATE payments_payments SET refund_pending_minor = refund_pending_minor + ${amountMinor}, updated_at = now()
     WHERE order_id = ${orderId} AND status IN ('CAPTURED', 'REFUNDED')
       AND refunded_minor + refund_pending_minor + ${amountMinor} <= captured_minor`;
  if (held === 0) throw await whyNotHeld(tx, orderId, amountMinor);
}

async function whyNotHeld(tx: Tx, orderId: string, amountMinor: number) {
  const [row] = await tx.$queryRaw<{ status: PaymentStatus; capturedMinor: number; refundedMinor: number; refundPendingMinor: number }[]>`
    SELECT status::text AS status, captured_minor AS "capturedMinor", refunded_minor AS "refundedMinor", refund_pending_minor AS "refundPendingMinor"
      FROM payments_payments WHERE order_id = ${orderId}`;
  if (!row) return notFound(`no payment for order ${orderId}`);
  if (row.status !== 'CAPTURED' && row.status !== 'REFUNDED') {
    return conflict('illegal_transition', `cannot refund a ${row.status.toLowerCase()} payment`, { status: row.status });
  }
  return refundExceedsCaptured(orderId, amountMinor, row.capturedMinor - row.refundedMinor - row.refundPendingMinor);
}

/**
 * Sends the refund's current attempt to the provider and records what it answers.
 * A retryable failure (thrown) keeps the hold: the provider may have taken the refund,
 * and the next request or sync asks again with the same key. A refusal fails the attempt.
 */
async function askProvider(db: Db, psp: PspClient, refund: PaymentRefund): Promise<PaymentRefund> {
  const payment = (await findPayment(db, refund.orderId))!;
  const answer = await psp.refund(refund.refundId, refund.attempt, payment.pspPaymentId!, refund.amountMinor);
  if (answer.status < 300) {
    await db.paymentRefund.updateMany({
      where: { refundId: refund.refundId, attempt: refund.attempt, status: 'PENDING', pspRefundId: null },
      data: { pspRefundId: answer.body.refundId },
    });
    return applyProviderOutcome(db, { ...refund, pspRefundId: answer.body.refundId }, answer.body);
  }
  const code = answer.body.error?.code ?? 'unknown';
  await settle(db, refund, 'FAILED', `provider_refused:${code}`);
  if (code === 'refund_exceeds_captured') {
    // the provider knows of refunds we do not (made outside this service): answer with what we can still hold
    const current = (await findPayment(db, refund.orderId))!;
    throw refundExceedsCaptured(refund.orderId, refund.amountMinor, current.capturedMinor - current.refundedMinor - current.refundPendingMinor);
  }
  if (code === 'not_captured') throw conflict('illegal_transition', `payment for order ${refund.orderId} is not captured at the provider`);
  throw providerRefused(answer);
}

async function applyProviderOutcome(db: Db, refund: PaymentRefund, truth: PspRefundBody): Promise<PaymentRefund> {
  if (truth.status === 'SUCCEEDED') await settle(db, refund, 'SUCCEEDED', null);
  if (truth.status === 'FAILED') await settle(db, refund, 'FAILED', truth.failureReason ?? 'unknown');
  return findRefund(db, refund.refundId);
}

/** Settles the attempt once: only a PENDING refund of that attempt moves, together with the payment's sums. */
async function settle(db: Db, refund: PaymentRefund, status: 'SUCCEEDED' | 'FAILED', failureReason: string | null): Promise<void> {
  await inTransaction(db, async (tx) => {
    const moved = await tx.$executeRaw`
      UPDATE payments_refunds SET status = ${status}::"PaymentRefundStatus", failure_reason = ${failureReason}, updated_at = now()
       WHERE refund_id = ${refund.refundId} AND attempt = ${refund.attempt} AND status = 'PENDING'`;
    if (moved === 0) return;
    if (status === 'SUCCEEDED') {
      await tx.$executeRaw`
        UPDATE payments_payments
           SET refund_pending_minor = refund_pending_minor - ${refund.amountMinor},
               refunded_minor = refunded_minor + ${refund.amountMinor},
               status = CASE WHEN refunded_minor + ${refund.amountMinor} = captured_minor THEN 'REFUNDED'::"PaymentStatus" ELSE status END,
               updated_at = now()
         WHERE order_id = ${refund.orderId}`;
    } else {
      await tx.$executeRaw`
        UPDATE payments_payments SET refund_pending_minor = refund_pending_minor - ${refund.amountMinor}, updated_at = now()
         WHERE order_id = ${refund.orderId}`;
    }
  });
}

async function findRefund(db: Db, refundId: string): Promise<PaymentRefund> {
  const refund = await db.paymentRefund.findUnique({ where: { refundId } });
  if (!refund) throw notFound(`no refund ${refundId}`);
  return refund;
}

async function lockRefund(tx: Tx, refundId: string): Promise<PaymentRefund> {
  await tx.$queryRaw`SELECT 1 FROM payments_refunds WHERE refund_id = ${refundId} FOR UPDATE`;
  const refund = await tx.paymentRefund.findUnique({ where: { refundId } });
  if (!refund) throw notFound(`no refund ${refundId}`);
  return refund;
}

function illegalTransition(refund: PaymentRefund, what: string) {
  return conflict('illegal_transition', `refund ${refund.refundId} is ${refund.status}; only a FAILED refund can be ${what}`, {
    status: refund.status,
  });
}

function refundExceedsCaptured(orderId: string, amountMinor: number, refundableMinor: number | undefined) {
  return conflict('refund_exceeds_captured', `refunding ${amountMinor} for order ${orderId} would exceed the captured amount`, {
    ...(refundableMinor === undefined ? {} : { refundableMinor }),
  });
}

function toView(refund: PaymentRefund) {
  return {
    refundId: refund.refundId,
    orderId: refund.orderId,
    status: refund.status satisfies PaymentRefundStatus,
    amountMinor: refund.amountMinor,
    reason: refund.reason,
    failureReason: refund.failureReason,
    attempt: refund.attempt,
    pspRefundId: refund.pspRefundId,
    manualReference: refund.manualReference,
    manualBy: refund.manualBy,
    createdAt: refund.createdAt.toISOString(),
    updatedAt: refund.updatedAt.toISOString(),
  };
}
