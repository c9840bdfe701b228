// The provider's side of a payment: authorize, capture, void. Every money
// movement writes one psp_transactions row in the same transaction as the status
// change, under a row lock, so a payment is captured at most once whatever the
// callers do. Ids are random, as a real provider's would be.
import { randomUUID } from 'node:crypto';
import type { Db } from '../../lib/db.ts';
import { HttpError, conflict, invalidRequest, notFound } from '../../lib/http-errors.ts';
import type { PspPayment, PspPaymentStatus, PspTransaction } from '../../generated/prisma/client.ts';
import { sleep } from '../common/timers.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import { cardBehaviour } from './cards.ts';

export const DEFAULT_TIMEOUT_CARD_MS = 30_000;

export interface AuthorizeRequest {
  amountMinor: number;
  currency: string;
  reference: string;
  card: { number: string };
}

const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '')}`;

export async function createPayment(db: Db, request: AuthorizeRequest, timeoutCardMs: number) {
  const behaviour = cardBehaviour(request.card.number);
  if (!behaviour) throw invalidRequest('not a test card number', 'card.number');
  if (behaviour.outcome === 'timeout') {
    await sleep(timeoutCardMs);
    throw new HttpError(504, 'processing_timeout', 'the card issuer did not answer in time; nothing was authorized');
  }

  const declineCode = behaviour.outcome === 'decline' ? behaviour.declineCode : null;
  const payment = await inTransaction(db, async (tx) => {
    const created = await tx.pspPayment.create({
      data: {
        id: newId('psp'),
        merchantReference: request.reference,
        amountMinor: request.amountMinor,
        currency: request.currency,
        cardLast4: request.card.number.slice(-4),
        status: declineCode ? 'DECLINED' : 'AUTHORIZED',
        declineCode,
      },
    });
    if (!declineCode) await recordTransaction(tx, created.id, 'AUTHORIZATION', created.amountMinor);
    return created;
  });
  return getPayment(db, payment.id);
}

export async function capturePayment(db: Db, id: string, amountMinor: number) {
  await inTransaction(db, async (tx) => {
    const payment = await lockPayment(tx, id);
    if (payment.status === 'CAPTURED') throw conflict('already_captured', `payment ${id} is already captured`);
    requireAuthorized(payment, 'capture');
    if (amountMinor > payment.amountMinor) {
      throw invalidRequest(`cannot capture ${amountMinor}, only ${payment.amountMinor} is authorized`, 'amountMinor');
    }
    await tx.pspPayment.update({ where: { id }, data: { status: 'CAPTURED' } });
    await recordTransaction(tx, id, 'CAPTURE', amountMinor);
  });
  return getPayment(db, id);
}

export async function voidPayment(db: Db, id: string) {
  await inTransaction(db, async (tx) => {
    const payment = await lockPayment(tx, id);
    if (payment.status === 'VOIDED') return;
    if (payment.status === 'CAPTURED') throw conflict('already_captured', `payment ${id} is already captured`);
    requireAuthorized(payment, 'void');
    await tx.pspPayment.update({ where: { id }, data: { status: 'VOIDED' } });
    await recordTransaction(tx, id, 'VOID', payment.amountMinor);
  });
  return getPayment(db, id);
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

async function lockPayment(tx: Tx, id: string): Promise<{ status: PspPaymentStatus; amountMinor: number }> {
  const [row] = await tx.$queryRaw<{ status: PspPaymentStatus; amountMinor: number }[]>`
    SELECT status::text AS status, amount_minor AS "amountMinor" FROM psp_payments WHERE id = ${id} FOR UPDATE`;
  if (!row) throw notFound(`no payment ${id}`);
  return row;
}

function requireAuthorized(payment: { status: PspPaymentStatus }, action: string): void {
  if (payment.status !== 'AUTHORIZED') {
    throw conflict('not_authorized', `cannot ${action} a ${payment.status.toLowerCase()} payment`, { status: payment.status });
  }
}

async function recordTransaction(tx: Tx, paymentId: string, type: PspTransaction['type'], amountMinor: number) {
  await tx.pspTransaction.create({ data: { id: newId('txn'), paymentId, type, amountMinor } });
}

function toView(payment: PspPayment & { transactions: PspTransaction[] }) {
  const capturedMinor = payment.transactions.filter((t) => t.type === 'CAPTURE').reduce((sum, t) => sum + t.amountMinor, 0);
  return {
    id: payment.id,
    status: payment.status,
    ...(payment.declineCode ? { declineCode: payment.declineCode } : {}),
    amountMinor: payment.amountMinor,
    capturedMinor,
    currency: payment.currency,
    reference: payment.merchantReference,
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
