// Our record of each order's payment, and the calls to the provider behind it.
// The provider decides asynchronously: authorize and capture leave the row
// AUTHORIZATION_PENDING / CAPTURE_PENDING, and the outcome lands when someone asks
// the provider for its truth (`syncPayment`, prompted by a webhook or a poll).
// The payments row is keyed by order; no database transaction is held across a
// provider call. Instead every provider call is idempotent (key derived from the
// order) and every row change is conditional on the state we read, so a retry or
// a concurrent call always lands on the same provider payment and never moves
// money twice:
//   authorize: no row → provider → insert (ON CONFLICT DO NOTHING);
//   capture:   AUTHORIZED → provider capture → CAPTURE_PENDING;
//   void:      no row → VOIDED tombstone (refuses a late authorize);
//              pending or AUTHORIZED → provider void → VOIDED;
//   refund:    refunds.ts (held on this row first, never beyond the capture,
//              then asked of the provider).
// If the tombstone lands while an authorize is at the provider, the authorize
// voids what it just started and answers 409 payment_voided; a sync keeps voiding
// anything the provider still holds for a VOIDED order.
import type { Db } from '../../lib/db.ts';
import { HttpError, conflict, invalidRequest, notFound, notYet } from '../../lib/http-errors.ts';
import type { Payment, PaymentStatus } from '../../generated/prisma/client.ts';
import type { PaymentMethod } from '../../shared/checkout.ts';
import { inTransaction } from '../common/transaction.ts';
import type { PspAnswer, PspClient, PspPaymentBody, PspPaymentStatus } from './psp-client.ts';

export interface AuthorizeInput {
  orderId: string;
  amountMinor: number;
  currency: string;
  /** The provider's token, brand and last4: the card number never reaches this service. */
  paymentMethod: PaymentMethod;
}

export const paymentIdFor = (orderId: string) => `pay_${orderId}`;

// A tombstone has no amount; XXX is ISO 4217's "no currency".
const NO_CURRENCY = 'XXX';

const FROM_PSP: Record<PspPaymentStatus, PaymentStatus> = {
  PENDING: 'AUTHORIZATION_PENDING',
  AUTHORIZED: 'AUTHORIZED',
  DECLINED: 'DECLINED',
  CAPTURE_PENDING: 'CAPTURE_PENDING',
  CAPTURED: 'CAPTURED',
  VOIDED: 'VOIDED',
  REFUNDED: 'REFUNDED',
};

// How far along a payment is. The provider's truth only ever moves our record
// forward, so an older answer arriving late (a slow sync) cannot undo a newer one.
const PROGRESS: Record<PaymentStatus, number> = {
  AUTHORIZATION_PENDING: 0,
  AUTHORIZED: 1,
  CAPTURE_PENDING: 2,
  CAPTURED: 3,
  REFUNDED: 4,
  DECLINED: 5,
  VOIDED: 5,
};

export const isPending = (status: PaymentStatus) => status === 'AUTHORIZATION_PENDING' || status === 'CAPTURE_PENDING';

export type PaymentView = ReturnType<typeof toView>;

export async function authorizePayment(db: Db, psp: PspClient, input: AuthorizeInput): Promise<PaymentView> {
  const existing = await findPayment(db, input.orderId);
  if (existing) return answerForExisting(db, psp, existing);

  const answer = await psp.authorize(input.orderId, {
    amountMinor: input.amountMinor,
    currency: input.currency,
    paymentMethod: input.paymentMethod.token,
  });
  if (answer.status >= 300) throw authorizeRefused(answer);
  const { id: pspPaymentId, status, declineCode } = answer.body;

  const inserted = await db.$executeRaw`
    INSERT INTO payments_payments (id, order_id, amount_minor, currency, status, psp_payment_id, decline_code,
                                   captured_minor, refunded_minor, created_at, updated_at)
    VALUES (${paymentIdFor(input.orderId)}, ${input.orderId}, ${input.amountMinor}, ${input.currency},
            ${FROM_PSP[status]}::"PaymentStatus", ${pspPaymentId}, ${declineCode ?? null}, 0, 0, now(), now())
    ON CONFLICT (order_id) DO NOTHING`;
  const payment = (await findPayment(db, input.orderId))!;
  if (inserted === 0) {
    // A void got here first while we were at the provider: remember what we started, then undo it.
    if (payment.status === 'VOIDED' && payment.pspPaymentId === null) {
      await db.payment.updateMany({ where: { orderId: input.orderId, pspPaymentId: null }, data: { pspPaymentId } });
      payment.pspPaymentId = pspPaymentId;
    }
    return answerForExisting(db, psp, payment);
  }
  if (payment.status === 'DECLINED') throw declined(payment);
  return toView(payment);
}

/** Asks the provider for its truth and brings our record up to date. Safe to repeat. */
export async function syncPayment(db: Db, psp: PspClient, orderId: string): Promise<PaymentView> {
  const payment = await findPayment(db, orderId);
  if (!payment) throw notFound(`no payment for order ${orderId}`);
  if (payment.pspPaymentId === null) return toView(payment); // a tombstone: nothing at the provider

  const answer = await psp.get(payment.pspPaymentId);
  if (answer.status !== 200) throw providerRefused(answer);
  const synced = await applyProviderTruth(db, orderId, answer.body);
  if (synced.status === 'VOIDED' && (answer.body.status === 'PENDING' || answer.body.status === 'AUTHORIZED')) {
    // We voided this order; the provider still holds (or is about to hold) money for it.
    const voided = await psp.void(orderId, payment.pspPaymentId);
    if (voided.status !== 200 && !['payment_processing', 'not_authorized'].includes(voided.body.error?.code ?? '')) {
      throw providerRefused(voided);
    }
  }
  return toView(synced);
}

export async function capturePayment(db: Db, psp: PspClient, orderId: string): Promise<PaymentView> {
  let payment = await findPayment(db, orderId);
  if (!payment) throw notFound(`no payment for order ${orderId}`);
  if (payment.status === 'AUTHORIZATION_PENDING') payment = await refresh(db, psp, payment);
  if (payment.status === 'CAPTURE_PENDING' || payment.status === 'CAPTURED' || payment.status === 'REFUNDED') return toView(payment);
  if (payment.status !== 'AUTHORIZED') {
    throw conflict('illegal_transition', `cannot capture a ${payment.status.toLowerCase()} payment`, { status: payment.status });
  }

  const answer = await psp.capture(orderId, payment.pspPaymentId!, payment.amountMinor);
  if (answer.status < 300) return toView(await applyProviderTruth(db, orderId, answer.body));
  if (answer.body.error?.code === 'not_authorized') {
    await refresh(db, psp, payment);
    throw conflict('illegal_transition', `payment for order ${orderId} is no longer authorized at the provider`);
  }
  throw providerRefused(answer);
}

export async function voidPayment(db: Db, psp: PspClient, orderId: string): Promise<PaymentView> {
  const tombstone = await db.$executeRaw`
    INSERT INTO payments_payments (id, order_id, amount_minor, currency, status, captured_minor, refunded_minor, created_at, updated_at)
    VALUES (${paymentIdFor(orderId)}, ${orderId}, 0, ${NO_CURRENCY}, 'VOIDED', 0, 0, now(), now())
    ON CONFLICT (order_id) DO NOTHING`;
  const payment = (await findPayment(db, orderId))!;
  if (tombstone === 1) return toView(payment);
  if (payment.status === 'VOIDED' || payment.status === 'DECLINED') return toView(payment);
  if (payment.status !== 'AUTHORIZATION_PENDING' && payment.status !== 'AUTHORIZED') throw alreadyCaptured(orderId);

  const answer = await psp.void(orderId, payment.pspPaymentId!);
  if (answer.status === 200) {
    await db.payment.updateMany({
      where: { orderId, status: { in: ['AUTHORIZATION_PENDING', 'AUTHORIZED'] } },
      data: { status: 'VOIDED' },
    });
    return toView((await findPayment(db, orderId))!);
  }
  switch (answer.body.error?.code) {
    case 'payment_processing':
      // not stored under the caller's Idempotency-Key: the same void is asked again later
      throw notYet('payment_processing', `the provider is still processing the payment for order ${orderId}; ask again for its outcome`);
    case 'already_captured':
      await refresh(db, psp, payment);
      throw alreadyCaptured(orderId);
    case 'not_authorized': {
      // declined at the provider while we still thought it pending: nothing to void
      const current = await refresh(db, psp, payment);
      if (current.status === 'DECLINED' || current.status === 'VOIDED') return toView(current);
      throw providerRefused(answer);
    }
    default:
      throw providerRefused(answer);
  }
}

export async function getPayment(db: Db, orderId: string): Promise<PaymentView> {
  const payment = await findPayment(db, orderId);
  if (!payment) throw notFound(`no payment for order ${orderId}`);
  return toView(payment);
}

/** Most payments one page of `GET /payments` lists, and the most order ids one lookup names. */
export const MAX_LIST_PAGE = 500;
export const MAX_LOOKUP = 500;

export interface PaymentPage {
  payments: PaymentView[];
  /** Pass as `after` for the next page; null on the last one. */
  nextCursor: string | null;
}

/**
 * Payments changed at or after `updatedSince`, a page at a time in order id order (for
 * reconciliation, which walks its references in that order). Keyset pagination on the order id:
 * a payment that changes while someone pages keeps its place, so none is listed twice or skipped.
 * Byte order ("C"), whatever the database's collation, so callers can merge pages with their own sort.
 */
export async function listPayments(db: Db, { updatedSince, after, limit }: { updatedSince: Date; after?: string; limit: number }): Promise<PaymentPage> {
  const listed = await db.$queryRaw<{ order_id: string }[]>`
    SELECT order_id FROM payments_payments
     WHERE updated_at >= ${updatedSince} AND order_id COLLATE "C" > ${after ?? ''}
     ORDER BY order_id COLLATE "C"
     LIMIT ${limit + 1}`;
  const orderIds = listed.slice(0, limit).map((row) => row.order_id);
  return { payments: await lookupPayments(db, orderIds), nextCursor: listed.length > limit ? orderIds.at(-1)! : null };
}

/** The payments of these orders, in the order asked; an order without a payment is left out. */
export async function lookupPayments(db: Db, orderIds: string[]): Promise<PaymentView[]> {
  if (orderIds.length === 0) return [];
  const found = new Map((await db.payment.findMany({ where: { orderId: { in: orderIds } } })).map((p) => [p.orderId, p]));
  return orderIds.flatMap((orderId) => (found.has(orderId) ? [toView(found.get(orderId)!)] : []));
}

/**
 * Writes the provider's view of a payment into our row, only ever forward. Refunded
 * amounts are ours to keep (refunds.ts): they include refunds paid outside the provider.
 */
async function applyProviderTruth(db: Db, orderId: string, truth: PspPaymentBody): Promise<Payment> {
  const status = FROM_PSP[truth.status];
  await inTransaction(db, async (tx) => {
    const [row] = await tx.$queryRaw<{ status: PaymentStatus }[]>`
      SELECT status::text AS status FROM payments_payments WHERE order_id = ${orderId} FOR UPDATE`;
    if (!row || PROGRESS[status] < PROGRESS[row.status]) return;
    if ((row.status === 'VOIDED' || row.status === 'DECLINED') && status !== row.status) return;
    await tx.$executeRaw`
      UPDATE payments_payments
         SET status = ${status}::"PaymentStatus", captured_minor = ${truth.capturedMinor}, decline_code = ${truth.declineCode ?? null},
             updated_at = now()
       WHERE order_id = ${orderId}`;
  });
  return (await findPayment(db, orderId))!;
}

/** Our record, brought up to date from the provider. */
export async function refresh(db: Db, psp: PspClient, payment: Payment): Promise<Payment> {
  if (payment.pspPaymentId === null) return payment;
  const answer = await psp.get(payment.pspPaymentId);
  if (answer.status !== 200) throw providerRefused(answer);
  return applyProviderTruth(db, payment.orderId, answer.body);
}

/** The answer to an authorize for an order that already has a payment row. */
async function answerForExisting(db: Db, psp: PspClient, payment: Payment): Promise<PaymentView> {
  if (payment.status === 'DECLINED') throw declined(payment);
  if (payment.status === 'VOIDED') {
    // Make sure nothing stays authorized at the provider (idempotent: replayed after the first time).
    if (payment.pspPaymentId !== null) {
      const answer = await psp.void(payment.orderId, payment.pspPaymentId);
      if (answer.body.error?.code === 'payment_processing') {
        throw notYet('payment_processing', `payment for order ${payment.orderId} was voided, but the provider is still processing it`);
      }
      if (answer.status !== 200 && answer.body.error?.code !== 'not_authorized') throw providerRefused(answer);
    }
    throw conflict('payment_voided', `payment for order ${payment.orderId} was already voided`);
  }
  return toView(payment);
}

export function findPayment(db: Db, orderId: string): Promise<Payment | null> {
  return db.payment.findUnique({ where: { orderId } });
}

function declined(payment: Payment): HttpError {
  return new HttpError(402, 'payment_declined', `the card was declined (${payment.declineCode})`, {
    details: { declineCode: payment.declineCode, paymentId: payment.id },
  });
}

function alreadyCaptured(orderId: string): HttpError {
  return conflict('already_captured', `payment for order ${orderId} is already captured`);
}

function authorizeRefused(answer: PspAnswer): HttpError {
  // an unknown token is the caller's mistake, not a provider mismatch
  if (answer.status === 400 && answer.body.error?.field === 'paymentMethod') {
    return invalidRequest(answer.body.error.message, 'paymentMethod.token');
  }
  return providerRefused(answer);
}

/** A provider 4xx we have no rule for: a bug or a mismatch, not worth retrying. */
export function providerRefused(answer: Pick<PspAnswer<unknown>, 'status' | 'body'>): HttpError {
  const code = answer.body.error?.code ?? 'unknown';
  return conflict('psp_rejected', `payment provider refused the request (${answer.status} ${code})`, {
    pspStatus: answer.status,
    pspCode: code,
  });
}

function toView(payment: Payment) {
  const tombstone = payment.status === 'VOIDED' && payment.currency === NO_CURRENCY;
  return {
    paymentId: payment.id,
    orderId: payment.orderId,
    status: payment.status,
    amountMinor: payment.amountMinor,
    capturedMinor: payment.capturedMinor,
    refundedMinor: payment.refundedMinor,
    refundPendingMinor: payment.refundPendingMinor,
    refundableMinor: payment.capturedMinor - payment.refundedMinor - payment.refundPendingMinor,
    currency: payment.currency,
    declineCode: payment.declineCode,
    pspPaymentId: payment.pspPaymentId,
    updatedAt: payment.updatedAt.toISOString(),
    ...(tombstone ? { tombstone: true as const } : {}),
  };
}
