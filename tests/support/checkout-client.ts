// Small helpers for driving checkouts through the real HTTP API in tests, with tokens: a
// checkout is started by its customer (the token's subject is the body's customerId) and read
// by staff unless a test says who reads it.
import assert from 'node:assert/strict';
import type { Db } from '../../lib/db.ts';
import type { Role } from '../../shared/permissions.ts';

/** The simulator's test cards, for the checkouts these helpers post (tests/support/cards.ts). */
export { CARDS } from './cards.ts';

/** Where the API is and how to get a token for anyone: tests/support/stack.ts's TestStack is one. */
export interface ApiAccess {
  apiUrl: string;
  tokenFor(role: Role | Role[], subject: string): Promise<string>;
}

/** Who reads a checkout when a test does not say: support may read any. */
export const STAFF_READER: Caller = ['support', 'it-support'];

/** A role and the subject its token names. */
export type Caller = [role: Role | Role[], subject: string];

export async function authorization(api: ApiAccess, [role, subject]: Caller): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await api.tokenFor(role, subject)}` };
}

/** POST /checkouts as the customer the body names. */
export async function postCheckout(api: ApiAccess, key: string, body: { customerId: string } & Record<string, unknown>) {
  const res = await fetch(`${api.apiUrl}/checkouts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...(await authorization(api, ['customer', body.customerId])) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

export async function getCheckout(api: ApiAccess, id: string, as: Caller = STAFF_READER) {
  const res = await fetch(`${api.apiUrl}/checkouts/${encodeURIComponent(id)}`, { headers: await authorization(api, as) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Polls GET /checkouts/:id until the checkout is PAID or CANCELLED. */
export async function waitForOutcome(api: ApiAccess, id: string, timeoutMs = 60_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await getCheckout(api, id);
    assert.equal(status, 200, JSON.stringify(body));
    if (body.status === 'PAID' || body.status === 'CANCELLED') return body;
    if (Date.now() > deadline) assert.fail(`checkout ${id} still ${body.status} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls until the running checkout reports the given step. */
export async function waitForStep(api: ApiAccess, id: string, step: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getCheckout(api, id);
    const current = body.state?.step ?? body.step;
    if (current === step) return;
    if (Date.now() > deadline) assert.fail(`checkout ${id} never reached ${step}: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Everything a checkout can touch, read straight from the services' tables. */
export async function snapshot(db: Db, { sku, customerId, couponCode, orderId }: { sku: string; customerId: string; couponCode?: string; orderId: string }) {
  const stock = await db.stockItem.findUniqueOrThrow({ where: { sku } });
  const coupon = couponCode ? await db.coupon.findUnique({ where: { code: couponCode } }) : null;
  const loyalty = await db.loyaltyAccount.findUnique({ where: { customerId } });
  const order = await db.order.findUnique({ where: { id: orderId } });
  const pspPayments = await db.pspPayment.findMany({ where: { merchantReference: orderId }, include: { transactions: true } });
  const transactions = pspPayments.flatMap((p) => p.transactions);
  return {
    onHand: stock.onHand,
    reserved: stock.reserved,
    couponStatus: coupon?.status ?? null,
    points: loyalty?.points ?? 0,
    order,
    authorizations: transactions.filter((t) => t.type === 'AUTHORIZATION').length,
    captures: transactions.filter((t) => t.type === 'CAPTURE').length,
    voids: transactions.filter((t) => t.type === 'VOID').length,
  };
}
