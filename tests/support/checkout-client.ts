// Small helpers for driving checkouts through the real HTTP API in tests.
import assert from 'node:assert/strict';
import type { Db } from '../../lib/db.ts';

export const CARDS = {
  approve: '4242424242424242',
  decline: '4000000000000002',
  insufficientFunds: '4000000000009995',
  timeout: '4000000000000119',
} as const;

export async function postCheckout(apiUrl: string, key: string, body: unknown) {
  const res = await fetch(`${apiUrl}/checkouts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

export async function getCheckout(apiUrl: string, id: string) {
  const res = await fetch(`${apiUrl}/checkouts/${encodeURIComponent(id)}`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Polls GET /checkouts/:id until the checkout is PAID or CANCELLED. */
export async function waitForOutcome(apiUrl: string, id: string, timeoutMs = 60_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await getCheckout(apiUrl, id);
    assert.equal(status, 200, JSON.stringify(body));
    if (body.status === 'PAID' || body.status === 'CANCELLED') return body;
    if (Date.now() > deadline) assert.fail(`checkout ${id} still ${body.status} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls until the running checkout reports the given step. */
export async function waitForStep(apiUrl: string, id: string, step: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await getCheckout(apiUrl, id);
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
