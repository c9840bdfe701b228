// The provider's settlement report: every money movement in a time window,
// `from` inclusive and `to` exclusive, so consecutive windows never count a
// transaction twice or miss one.
import type { Db } from '../../lib/db.ts';

export async function settlementReport(db: Db, from: Date, to: Date) {
  const transactions = await db.pspTransaction.findMany({
    where: { createdAt: { gte: from, lt: to } },
    include: { payment: { select: { merchantReference: true, currency: true } } },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    transactions: transactions.map((t) => ({
      id: t.id,
      paymentId: t.paymentId,
      reference: t.payment.merchantReference,
      type: t.type,
      amountMinor: t.amountMinor,
      currency: t.payment.currency,
      createdAt: t.createdAt.toISOString(),
    })),
  };
}
