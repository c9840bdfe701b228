// Loyalty points: one point per whole major unit paid. An order has at most one
// AWARD entry (a partial unique index) and one REVERSE entry per reversal id
// (unique), so awarding or reversing twice is impossible; reversals take the
// award's row lock and never add up to more than the award. The account balance
// moves in the same transaction as the entry that explains it. REVERSE entries
// carry negative points, so a balance is the sum of its entries.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import type { LoyaltyEntry } from '../../generated/prisma/client.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';

export interface AwardInput {
  orderId: string;
  customerId: string;
  amountMinor: number;
  currency: string;
}

export function pointsFor(amountMinor: number): number {
  return Math.floor(amountMinor / 100);
}

/** The reversal id POST /awards/:orderId/reverse uses: it reverses what is left of the award, once. */
export const fullReversalId = (orderId: string) => `reverse:${orderId}`;

export async function awardPoints(db: Db, input: AwardInput): Promise<{ created: boolean; entry: EntryView }> {
  return inTransaction(db, async (tx) => {
    const points = pointsFor(input.amountMinor);
    const [inserted] = await tx.$queryRaw<{ id: number }[]>`
      INSERT INTO loyalty_entries (customer_id, order_id, kind, points, created_at)
      VALUES (${input.customerId}, ${input.orderId}, 'AWARD', ${points}, now())
      ON CONFLICT (order_id) WHERE kind = 'AWARD' DO NOTHING
      RETURNING id`;
    if (!inserted) return { created: false, entry: toEntryView((await findAward(tx, input.orderId))!) };
    return { created: true, entry: toEntryView(await credit(tx, inserted.id, input.customerId, points)) };
  });
}

/** Reverses whatever is left of the award (the checkout's compensation). */
export async function reverseAward(db: Db, orderId: string): Promise<{ created: boolean; entry: EntryView }> {
  return reverse(db, orderId, fullReversalId(orderId), (remaining) => remaining);
}

/** Reverses `points` of the award once per reversal id (refunds); never more than was awarded in total. */
export async function reversePoints(db: Db, orderId: string, input: { reversalId: string; points: number }) {
  return reverse(db, orderId, input.reversalId, (remaining) => {
    if (input.points > remaining) {
      throw conflict('reversal_exceeds_award', `cannot reverse ${input.points} points of order ${orderId}, only ${remaining} are left`, {
        requestedPoints: input.points,
        remainingPoints: remaining,
      });
    }
    return input.points;
  });
}

async function reverse(
  db: Db,
  orderId: string,
  reversalId: string,
  pointsToReverse: (remaining: number) => number,
): Promise<{ created: boolean; entry: EntryView }> {
  return inTransaction(db, async (tx) => {
    // the award's row lock queues concurrent reversals of one order
    const [award] = await tx.$queryRaw<{ id: number; customerId: string; points: number }[]>`
      SELECT id, customer_id AS "customerId", points FROM loyalty_entries WHERE order_id = ${orderId} AND kind = 'AWARD' FOR UPDATE`;
    if (!award) throw notFound(`no loyalty award for order ${orderId}`);
    const earlier = await tx.loyaltyEntry.findUnique({ where: { reversalId } });
    if (earlier) {
      if (earlier.orderId !== orderId) {
        throw conflict('reversal_id_reused', `reversal ${reversalId} belongs to order ${earlier.orderId}`, { orderId: earlier.orderId });
      }
      return { created: false, entry: toEntryView(earlier) };
    }
    const [{ reversed }] = (await tx.$queryRaw<{ reversed: number }[]>`
      SELECT COALESCE(-SUM(points), 0)::int AS reversed FROM loyalty_entries WHERE order_id = ${orderId} AND kind = 'REVERSE'`) as [
      { reversed: number },
    ];
    const points = pointsToReverse(award.points - reversed);
    const [inserted] = await tx.$queryRaw<{ id: number }[]>`
      INSERT INTO loyalty_entries (customer_id, order_id, kind, points, reversal_id, created_at)
      VALUES (${award.customerId}, ${orderId}, 'REVERSE', ${-points}, ${reversalId}, now())
      RETURNING id`;
    return { created: true, entry: toEntryView(await credit(tx, inserted!.id, award.customerId, -points)) };
  });
}

export async function getAccount(db: Db, customerId: string) {
  const [account, entries] = await Promise.all([
    db.loyaltyAccount.findUnique({ where: { customerId } }),
    db.loyaltyEntry.findMany({ where: { customerId }, orderBy: { id: 'asc' } }),
  ]);
  return { customerId, points: account?.points ?? 0, entries: entries.map(toEntryView) };
}

/** Moves the balance by the entry's points. */
async function credit(tx: Tx, entryId: number, customerId: string, points: number): Promise<LoyaltyEntry> {
  await tx.$executeRaw`
    INSERT INTO loyalty_accounts (customer_id, points, updated_at) VALUES (${customerId}, ${points}, now())
    ON CONFLICT (customer_id) DO UPDATE SET points = loyalty_accounts.points + EXCLUDED.points, updated_at = now()`;
  return tx.loyaltyEntry.findUniqueOrThrow({ where: { id: entryId } });
}

function findAward(tx: Tx, orderId: string): Promise<LoyaltyEntry | null> {
  return tx.loyaltyEntry.findFirst({ where: { orderId, kind: 'AWARD' } });
}

export type EntryView = ReturnType<typeof toEntryView>;

function toEntryView(entry: LoyaltyEntry) {
  return {
    id: entry.id,
    orderId: entry.orderId,
    customerId: entry.customerId,
    kind: entry.kind,
    points: entry.points,
    ...(entry.reversalId === null ? {} : { reversalId: entry.reversalId }),
    createdAt: entry.createdAt.toISOString(),
  };
}
