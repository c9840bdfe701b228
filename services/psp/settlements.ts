// The provider's settlement report: every money movement in a time window,
// `from` inclusive and `to` exclusive, so consecutive windows never count a
// transaction twice or miss one. It comes in pages of whole references (a
// reference's movements are never split across pages), in reference order, so a
// reader can walk it beside its own records of the same references.
import type { Db } from '../../lib/db.ts';

/** The most references one page of the report covers. */
export const MAX_REPORT_REFERENCES = 500;

interface ReportRow {
  id: string;
  payment_id: string;
  reference: string;
  type: string;
  amount_minor: number;
  currency: string;
  created_at: Date;
}

/**
 * Keyset pagination on the reference (`after`: the page before's `nextCursor`), compared in byte
 * order ("C") whatever the database's collation, so readers can merge it with their own sort.
 */
export async function settlementReport(db: Db, from: Date, to: Date, { after, limit }: { after?: string; limit: number }) {
  const references = (
    await db.$queryRaw<{ reference: string }[]>`
      SELECT DISTINCT p.merchant_reference COLLATE "C" AS reference
        FROM psp_transactions t JOIN psp_payments p ON p.id = t.payment_id
       WHERE t.created_at >= ${from} AND t.created_at < ${to} AND p.merchant_reference COLLATE "C" > ${after ?? ''}
       ORDER BY 1
       LIMIT ${limit + 1}`
  ).map((row) => row.reference);
  const page = references.slice(0, limit);
  const rows = page.length === 0 ? [] : await db.$queryRaw<ReportRow[]>`
      SELECT t.id, t.payment_id, p.merchant_reference AS reference, t.type::text AS type, t.amount_minor, p.currency, t.created_at
        FROM psp_transactions t JOIN psp_payments p ON p.id = t.payment_id
       WHERE t.created_at >= ${from} AND t.created_at < ${to} AND p.merchant_reference = ANY(${page})
       ORDER BY p.merchant_reference COLLATE "C", t.created_at, t.id`;
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    transactions: rows.map((t) => ({
      id: t.id,
      paymentId: t.payment_id,
      reference: t.reference,
      type: t.type,
      amountMinor: t.amount_minor,
      currency: t.currency,
      createdAt: t.created_at.toISOString(),
    })),
    nextCursor: references.length > limit ? page.at(-1)! : null,
  };
}
