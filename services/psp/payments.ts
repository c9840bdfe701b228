// The provider's side of a payment. Authorize and capture are only taken on
// here (PENDING, CAPTURE_PENDING, with a `decide_at`); `decideDuePayments` makes
// the decision later. Every change happens under a row lock, together with its
// psp_transactions row (money movements) and its webhook event, so a payment is
// captured at most once and refunds never exceed the capture, whatever the
// callers do. Refunds live in refunds.ts. Ids are random, as a real provider's would be.
// A payment names its card by token; the number stays in the vault (payment-methods.ts).
import type { Db } from '../../lib/db.ts';
import { HttpError, conflict, invalidRequest, notFound, notYet } from '../../lib/http-errors.ts';
import { Prisma, type PspPayment, type PspPaymentStatus, type PspTransaction } from '../../generated/prisma/client.ts';
import type { PspEventType } from '../../shared/payments.ts';
import { sleep } from '../common/timers.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import { cardBehaviour } from './cards.ts';
import type { ChaosSettings } from './chaos.ts';
import { recordEvent } from './events.ts';
import { newId } from './ids.ts';
import { cardForToken } from './payment-methods.ts';

export const DEFAULT_TIMEOUT_CARD_MS = 30_000;
// Decisions taken per transaction; the rest wait for the next round.
const DECISION_BATCH = 50;

export interface AuthorizeRequest {
  amountMinor: number;
  currency: string;
  reference: string;
  /** A token from the vault (payment-methods.ts); the number behind it decides the test card's outcome. */
  paymentMethod: string;
}

export interface LockedPayment {
  id: string;
  merchantReference: string;
  status: PspPaymentStatus;
  amountMinor: number;
  currency: string;
  declineCode: string | null;
  captureMinor: number | null;
  capturedMinor: number;
  refundedMinor: number;
  refundPendingMinor: number;
}

const PAYMENT_COLUMNS = Prisma.sql`
  id, merchant_reference AS "merchantReference", status::text AS status, amount_minor AS "amountMinor", currency,
  decline_code AS "declineCode", capture_minor AS "captureMinor", captured_minor AS "capturedMinor", refunded_minor AS "refundedMinor",
  refund_pending_minor AS "refundPendingMinor"`;

export async function createPayment(db: Db, request: AuthorizeRequest, timeoutCardMs: number, chaos: ChaosSettings) {
  const card = await cardForToken(db, request.paymentMethod);
  // the vault only takes test cards, so every token has a behaviour
  const behaviour = cardBehaviour(card.number);
  if (!behaviour) throw invalidRequest('the payment method is not a test card', 'paymentMethod');
  if (behaviour.outcome === 'timeout') {
    await sleep(timeoutCardMs);
    throw new HttpError(504, 'processing_timeout', 'the card issuer did not answer in time; nothing was authorized');
  }

  // paidAfterTimeout: the issuer approves, but only after the merchant has given up waiting
  const late = chaos.paidAfterTimeout || behaviour.outcome === 'approve-late';
  const declineCode = !chaos.paidAfterTimeout && behaviour.outcome === 'decline' ? behaviour.declineCode : null;
  const delayMs = late ? chaos.lateDecisionMs : chaos.processingDelayMs;
  const id = newId('psp');
  await db.$executeRaw`
    INSERT INTO psp_payments (id, merchant_reference, amount_minor, currency, card_last4, status, decline_code, decide_at,
                              captured_minor, refunded_minor, created_at, updated_at)
    VALUES (${id}, ${request.reference}, ${request.amountMinor}, ${request.currency}, ${card.last4}, 'PENDING',
            ${declineCode}, now() + make_interval(secs => ${delayMs / 1000}), 0, 0, now(), now())`;
  return getPayment(db, id);
}

/** `accepted` is false when the payment was already capturing or captured (answered 200 with its state). */
export async function capturePayment(db: Db, id: string, amountMinor: number, chaos: ChaosSettings) {
  const accepted = await inTransaction(db, async (tx) => {
    const payment = await lockPayment(tx, id);
    if (payment.status === 'CAPTURE_PENDING' || payment.status === 'CAPTURED' || payment.status === 'REFUNDED') return false;
    if (payment.status !== 'AUTHORIZED') {
      throw conflict('not_authorized', `cannot capture a ${payment.status.toLowerCase()} payment`, { status: payment.status });
    }
    if (amountMinor > payment.amountMinor) {
      throw invalidRequest(`cannot capture ${amountMinor}, only ${payment.amountMinor} is authorized`, 'amountMinor');
    }
    await tx.$executeRaw`
      UPDATE psp_payments
         SET status = 'CAPTURE_PENDING', capture_minor = ${amountMinor},
             decide_at = now() + make_interval(secs => ${chaos.processingDelayMs / 1000}), updated_at = now()
       WHERE id = ${id}`;
    return true;
  });
  return { accepted, payment: await getPayment(db, id) };
}

export async function voidPayment(db: Db, id: string, chaos: ChaosSettings) {
  await inTransaction(db, async (tx) => {
    const payment = await lockPayment(tx, id);
    if (payment.status === 'VOIDED') return;
    if (payment.status === 'CAPTURE_PENDING' || payment.status === 'CAPTURED' || payment.status === 'REFUNDED') {
      throw conflict('already_captured', `payment ${id} is already captured`);
    }
    if (payment.status === 'PENDING' && chaos.paidAfterTimeout) {
      // not stored under the Idempotency-Key: the same void succeeds once the payment is decided
      throw notYet('payment_processing', `payment ${id} is being processed and can no longer be stopped; it will be decided later`);
    }
    if (payment.status !== 'PENDING' && payment.status !== 'AUTHORIZED') {
      throw conflict('not_authorized', `cannot void a ${payment.status.toLowerCase()} payment`, { status: payment.status });
    }
    // the pending decision, if any, never happens
    await tx.$executeRaw`UPDATE psp_payments SET status = 'VOIDED', decide_at = NULL, updated_at = now() WHERE id = ${id}`;
    if (payment.status === 'AUTHORIZED') await recordTransaction(tx, id, 'VOID', payment.amountMinor);
    await recordEvent(tx, { ...payment, status: 'VOIDED' }, 'payment.voided', payment.amountMinor, chaos.deliveryDelayMs);
  });
  return getPayment(db, id);
}

/**
 * Decides the pending authorizations and captures that are due. Rows are claimed
 * with SKIP LOCKED, so several PSP instances share the work without deciding twice,
 * and a void holding the row lock is never overtaken.
 */
export async function decideDuePayments(db: Db, chaos: ChaosSettings): Promise<number> {
  return inTransaction(db, async (tx) => {
    const due = await tx.$queryRaw<LockedPayment[]>`
      SELECT ${PAYMENT_COLUMNS} FROM psp_payments
       WHERE decide_at <= now()
       ORDER BY decide_at
       LIMIT ${DECISION_BATCH}
         FOR UPDATE SKIP LOCKED`;
    for (const payment of due) await decide(tx, payment, chaos);
    return due.length;
  });
}

async function decide(tx: Tx, payment: LockedPayment, chaos: ChaosSettings): Promise<void> {
  const announce = (status: PspPaymentStatus, type: PspEventType, amountMinor: number) =>
    recordEvent(tx, { ...payment, status }, type, amountMinor, chaos.deliveryDelayMs);

  if (payment.status === 'PENDING' && payment.declineCode) {
    await tx.$executeRaw`UPDATE psp_payments SET status = 'DECLINED', decide_at = NULL, updated_at = now() WHERE id = ${payment.id}`;
    await announce('DECLINED', 'payment.declined', payment.amountMinor);
  } else if (payment.status === 'PENDING') {
    await tx.$executeRaw`UPDATE psp_payments SET status = 'AUTHORIZED', decide_at = NULL, updated_at = now() WHERE id = ${payment.id}`;
    await recordTransaction(tx, payment.id, 'AUTHORIZATION', payment.amountMinor);
    await announce('AUTHORIZED', 'payment.authorized', payment.amountMinor);
  } else if (payment.status === 'CAPTURE_PENDING') {
    const amountMinor = payment.captureMinor ?? payment.amountMinor;
    await tx.$executeRaw`
      UPDATE psp_payments SET status = 'CAPTURED', captured_minor = ${amountMinor}, capture_minor = NULL, decide_at = NULL, updated_at = now()
       WHERE id = ${payment.id}`;
    await recordTransaction(tx, payment.id, 'CAPTURE', amountMinor);
    await announce('CAPTURED', 'payment.captured', amountMinor);
  } else {
    // nothing pending any more (cannot happen: every decided change clears decide_at)
    await tx.$executeRaw`UPDATE psp_payments SET decide_at = NULL WHERE id = ${payment.id}`;
  }
}

export async function getPayment(db: Db, id: string) {
  const payment = await db.pspPayment.findUnique({ where: { id }, include: { transactions: { orderBy: { createdAt: 'asc' } } } });
  if (!payment) throw notFound(`no payment ${id}`);
  return toView(payment);
}

export async function findPayments(db: Db, reference: string) {
  const payments = await db.pspPayment.findMany({
    where: { merchantReference: reference },
    include: { transactions: { orderBy: { createdAt: 'asc' } } },
    orderBy: { createdAt: 'asc' },
  });
  return payments.map(toView);
}

/** The most references one lookup names. */
export const MAX_LOOKUP_REFERENCES = 500;

/** Every payment of these references (the lookup a reconciliation makes for a page of references). */
export async function findPaymentsOf(db: Db, references: string[]) {
  const payments = await db.pspPayment.findMany({
    where: { merchantReference: { in: references } },
    include: { transactions: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] } },
    orderBy: [{ merchantReference: 'asc' }, { createdAt: 'asc' }, { id: 'asc' }],
  });
  return payments.map(toView);
}

export async function lockPayment(tx: Tx, id: string): Promise<LockedPayment> {
  const [row] = await tx.$queryRaw<LockedPayment[]>`SELECT ${PAYMENT_COLUMNS} FROM psp_payments WHERE id = ${id} FOR UPDATE`;
  if (!row) throw notFound(`no payment ${id}`);
  return row;
}

export async function recordTransaction(tx: Tx, paymentId: string, type: PspTransaction['type'], amountMinor: number): Promise<string> {
  const id = newId('txn');
  await tx.pspTransaction.create({ data: { id, paymentId, type, amountMinor } });
  return id;
}

function toView(payment: PspPayment & { transactions: PspTransaction[] }) {
  return {
    id: payment.id,
    reference: payment.merchantReference,
    status: payment.status,
    // the issuer's answer is only told once the payment is decided
    ...(payment.status === 'DECLINED' && payment.declineCode ? { declineCode: payment.declineCode } : {}),
    amountMinor: payment.amountMinor,
    capturedMinor: payment.capturedMinor,
    refundedMinor: payment.refundedMinor,
    refundPendingMinor: payment.refundPendingMinor,
    currency: payment.currency,
    cardLast4: payment.cardLast4,
    transactions: payment.transactions.map((t) => ({
      id: t.id,
      type: t.type,
      amountMinor: t.amountMinor,
      at: t.createdAt.toISOString(),
    })),
    createdAt: payment.createdAt.toISOString(),
  };
}
