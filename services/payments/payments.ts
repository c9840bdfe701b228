// Our record of each order's payment, and the calls to the provider behind it.
// The payments row is keyed by order; no database transaction is held across a
// provider call. Instead every provider call is idempotent (key derived from the
// order) and every row change is conditional on the state we read, so a retry or
// a concurrent call always lands on the same provider payment and never moves
// money twice:
//   authorize: no row → provider → insert (ON CONFLICT DO NOTHING);
//   capture:   AUTHORIZED → provider capture → AUTHORIZED→CAPTURED;
//   void:      no row → VOIDED tombstone (refuses a late authorize);
//              AUTHORIZED → provider void → AUTHORIZED→VOIDED.
// If the tombstone lands while an authorize is at the provider, the authorize
// voids what it just authorized and answers 409 payment_voided.
import type { Db } from '../../lib/db.ts';
import { HttpError, conflict, invalidRequest, notFound } from '../../lib/http-errors.ts';
import type { Payment } from '../../generated/prisma/client.ts';
import type { PspAnswer, PspClient } from './psp-client.ts';

export interface AuthorizeInput {
  orderId: string;
  amountMinor: number;
  currency: string;
  paymentMethod: { type: 'card'; number: string };
}

export const paymentIdFor = (orderId: string) => `pay_${orderId}`;

// A tombstone has no amount; XXX is ISO 4217's "no currency".
const NO_CURRENCY = 'XXX';

export type PaymentView = ReturnType<typeof toView>;

export async function authorizePayment(db: Db, psp: PspClient, input: AuthorizeInput): Promise<{ created: boolean; payment: PaymentView }> {
  const existing = await findPayment(db, input.orderId);
  if (existing) return { created: false, payment: await answerForExisting(psp, existing) };

  const answer = await psp.authorize(input.orderId, {
    amountMinor: input.amountMinor,
    currency: input.currency,
    cardNumber: input.paymentMethod.number,
  });
  if (answer.status !== 201) throw authorizeRefused(answer);
  const { id: pspPaymentId, status, declineCode } = answer.body;

  const inserted = await db.$executeRaw`
    INSERT INTO payments_payments (id, order_id, amount_minor, currency, status, psp_payment_id, decline_code, captured_minor, created_at, updated_at)
    VALUES (${paymentIdFor(input.orderId)}, ${input.orderId}, ${input.amountMinor}, ${input.currency},
            ${status}::"PaymentStatus", ${pspPaymentId}, ${declineCode ?? null}, 0, now(), now())
    ON CONFLICT (order_id) DO NOTHING`;
  const payment = (await findPayment(db, input.orderId))!;
  if (inserted === 0) {
    // A void got here first while we were at the provider: remember what we authorized, then undo it.
    if (payment.status === 'VOIDED' && status === 'AUTHORIZED' && payment.pspPaymentId === null) {
      await db.payment.updateMany({ where: { orderId: input.orderId, pspPaymentId: null }, data: { pspPaymentId } });
      payment.pspPaymentId = pspPaymentId;
    }
    return { created: false, payment: await answerForExisting(psp, payment) };
  }
  if (payment.status === 'DECLINED') throw declined(payment);
  return { created: true, payment: toView(payment) };
}

export async function capturePayment(db: Db, psp: PspClient, orderId: string): Promise<PaymentView> {
  const payment = await findPayment(db, orderId);
  if (!payment) throw notFound(`no payment for order ${orderId}`);
  if (payment.status === 'CAPTURED') return toView(payment);
  if (payment.status !== 'AUTHORIZED') {
    throw conflict('illegal_transition', `cannot capture a ${payment.status.toLowerCase()} payment`, { status: payment.status });
  }

  const answer = await psp.capture(orderId, payment.pspPaymentId!, payment.amountMinor);
  // already_captured: an earlier attempt captured but never recorded it here
  if (answer.status === 200 || answer.body.error?.code === 'already_captured') {
    return toView(await markCaptured(db, orderId, payment.amountMinor));
  }
  if (answer.body.error?.code === 'not_authorized') {
    throw conflict('illegal_transition', `payment for order ${orderId} was voided at the provider`);
  }
  throw providerRefused(answer);
}

export async function voidPayment(db: Db, psp: PspClient, orderId: string): Promise<PaymentView> {
  const tombstone = await db.$executeRaw`
    INSERT INTO payments_payments (id, order_id, amount_minor, currency, status, captured_minor, created_at, updated_at)
    VALUES (${paymentIdFor(orderId)}, ${orderId}, 0, ${NO_CURRENCY}, 'VOIDED', 0, now(), now())
    ON CONFLICT (order_id) DO NOTHING`;
  const payment = (await findPayment(db, orderId))!;
  if (tombstone === 1) return toView(payment);
  if (payment.status === 'VOIDED' || payment.status === 'DECLINED') return toView(payment);
  if (payment.status === 'CAPTURED') throw alreadyCaptured(orderId);

  const answer = await psp.void(orderId, payment.pspPaymentId!);
  if (answer.status === 200) {
    await db.payment.updateMany({ where: { orderId, status: 'AUTHORIZED' }, data: { status: 'VOIDED' } });
    return toView((await findPayment(db, orderId))!);
  }
  if (answer.body.error?.code === 'already_captured') {
    await markCaptured(db, orderId, payment.amountMinor);
    throw alreadyCaptured(orderId);
  }
  throw providerRefused(answer);
}

export async function getPayment(db: Db, orderId: string): Promise<PaymentView> {
  const payment = await findPayment(db, orderId);
  if (!payment) throw notFound(`no payment for order ${orderId}`);
  return toView(payment);
}

/** The answer to an authorize for an order that already has a payment row. */
async function answerForExisting(psp: PspClient, payment: Payment): Promise<PaymentView> {
  if (payment.status === 'DECLINED') throw declined(payment);
  if (payment.status === 'VOIDED') {
    // Make sure nothing stays authorized at the provider (idempotent: replayed after the first time).
    if (payment.pspPaymentId !== null) {
      const answer = await psp.void(payment.orderId, payment.pspPaymentId);
      if (answer.status !== 200 && answer.body.error?.code !== 'not_authorized') throw providerRefused(answer);
    }
    throw conflict('payment_voided', `payment for order ${payment.orderId} was already voided`);
  }
  return toView(payment);
}

async function markCaptured(db: Db, orderId: string, amountMinor: number): Promise<Payment> {
  await db.payment.updateMany({ where: { orderId, status: 'AUTHORIZED' }, data: { status: 'CAPTURED', capturedMinor: amountMinor } });
  return (await findPayment(db, orderId))!;
}

function findPayment(db: Db, orderId: string): Promise<Payment | null> {
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
  if (answer.status === 400 && answer.body.error?.field?.startsWith('card')) {
    return invalidRequest(answer.body.error.message, 'paymentMethod.number');
  }
  return providerRefused(answer);
}

/** A provider 4xx we have no rule for: a bug or a mismatch, not worth retrying. */
function providerRefused(answer: PspAnswer): HttpError {
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
    currency: payment.currency,
    capturedMinor: payment.capturedMinor,
    declineCode: payment.declineCode,
    pspPaymentId: payment.pspPaymentId,
    ...(tombstone ? { tombstone: true as const } : {}),
  };
}
