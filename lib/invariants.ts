// The money invariants every run must keep, checked against the tables themselves (the
// provider's records and ours), so tests and chaos runs can assert them after anything:
//  1. every payment captured at the provider belongs to a paid order, or was refunded in full;
//  2. every paid order has exactly one capture at the provider.
// A paid order is PAID, or PARTIALLY_REFUNDED / REFUNDED after refunds.
// Read with SQL on text-cast enums, so it keeps working as the services' enums grow.
import type { Db } from './db.ts';

const PAID_STATUSES = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'];

export type Violation =
  | { rule: 'captured-without-paid-order'; reference: string; pspPaymentId: string; capturedMinor: number; refundedMinor: number; orderStatus: string | null }
  | { rule: 'paid-order-capture-count'; reference: string; captures: number };

export async function checkMoneyInvariants(db: Db): Promise<Violation[]> {
  const captured = await db.$queryRaw<{ reference: string; pspPaymentId: string; capturedMinor: number; refundedMinor: number; orderStatus: string | null }[]>`
    SELECT p.merchant_reference AS reference, p.id AS "pspPaymentId",
           COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'CAPTURE'), 0)::int AS "capturedMinor",
           COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'REFUND'), 0)::int AS "refundedMinor",
           o.status::text AS "orderStatus"
      FROM psp_payments p
      JOIN psp_transactions t ON t.payment_id = p.id
      LEFT JOIN orders_orders o ON o.id = p.merchant_reference
     GROUP BY p.id, p.merchant_reference, o.status
    HAVING COUNT(*) FILTER (WHERE t.type::text = 'CAPTURE') > 0
     ORDER BY p.merchant_reference, p.id`;
  const paid = await db.$queryRaw<{ reference: string; captures: number }[]>`
    SELECT o.id AS reference, COUNT(t.id)::int AS captures
      FROM orders_orders o
      LEFT JOIN psp_payments p ON p.merchant_reference = o.id
      LEFT JOIN psp_transactions t ON t.payment_id = p.id AND t.type::text = 'CAPTURE'
     WHERE o.status::text = ANY(${PAID_STATUSES})
     GROUP BY o.id
    HAVING COUNT(t.id) <> 1
     ORDER BY o.id`;

  const violations: Violation[] = [];
  for (const row of captured) {
    if (PAID_STATUSES.includes(row.orderStatus ?? '') || row.refundedMinor >= row.capturedMinor) continue;
    violations.push({ rule: 'captured-without-paid-order', ...row });
  }
  for (const row of paid) violations.push({ rule: 'paid-order-capture-count', ...row });
  return violations;
}
