// Loyalty points: one point per whole major unit paid. The ledger has at most one
// AWARD and one REVERSE entry per order (unique (order_id, kind)), so awarding or
// reversing twice is impossible; the account balance moves in the same
// transaction as the entry that explains it. REVERSE entries carry negative
// points, so a balance is the sum of its entries.
import type { Db } from '../../lib/db.ts';
import { notFound } from '../../lib/http-errors.ts';
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

export async function awardPoints(db: Db, input: AwardInput): Promise<{ created: boolean; entry: EntryView }> {
  return inTransaction(db, async (tx) => {
    const points = pointsFor(input.amountMinor);
    const entry = await insertEntry(tx, { orderId: input.orderId, customerId: input.customerId, kind: 'AWARD', points });
    if (entry) return { created: true, entry: toEntryView(entry) };
    return { created: false, entry: toEntryView(await findEntry(tx, input.orderId, 'AWARD')) };
  });
}

export async function reverseAward(db: Db, orderId: string): Promise<{ created: boolean; entry: EntryView }> {
  return inTransaction(db, async (tx) => {
    const award = await tx.loyaltyEntry.findUnique({ where: { orderId_kind: { orderId, kind: 'AWARD' } } });
    if (!award) throw notFound(`no loyalty award for order ${orderId}`);
    const entry = await insertEntry(tx, { orderId, customerId: award.customerId, kind: 'REVERSE', points: -award.points });
    if (entry) return { created: true, entry: toEntryView(entry) };
    return { created: false, entry: toEntryView(await findEntry(tx, orderId, 'REVERSE')) };
  });
}

export async function getAccount(db: Db, customerId: string) {
  const [account, entries] = await Promise.all([
    db.loyaltyAccount.findUnique({ where: { customerId } }),
    db.loyaltyEntry.findMany({ where: { customerId }, orderBy: { id: 'asc' } }),
  ]);
  return { customerId, points: account?.points ?? 0, entries: entries.map(toEntryView) };
}

/** Inserts the entry and moves the balance, unless the order already has an entry of this kind. */
async function insertEntry(
  tx: Tx,
  entry: { orderId: string; customerId: string; kind: 'AWARD' | 'REVERSE'; points: number },
): Promise<LoyaltyEntry | undefined> {
  const [inserted] = await tx.$queryRaw<{ id: number }[]>`
    INSERT INTO loyalty_entries (customer_id, order_id, kind, points, created_at)
    VALUES (${entry.customerId}, ${entry.orderId}, ${entry.kind}::"LoyaltyEntryKind", ${entry.points}, now())
    ON CONFLICT (order_id, kind) DO NOTHING
    RETURNING id`;
  if (!inserted) return undefined;
  await tx.$executeRaw`
    INSERT INTO loyalty_accounts (customer_id, points, updated_at) VALUES (${entry.customerId}, ${entry.points}, now())
    ON CONFLICT (customer_id) DO UPDATE SET points = loyalty_accounts.points + EXCLUDED.points, updated_at = now()`;
  return tx.loyaltyEntry.findUniqueOrThrow({ where: { id: inserted.id } });
}

function findEntry(tx: Tx, orderId: string, kind: 'AWARD' | 'REVERSE'): Promise<LoyaltyEntry> {
  return tx.loyaltyEntry.findUniqueOrThrow({ where: { orderId_kind: { orderId, kind } } });
}

export type EntryView = ReturnType<typeof toEntryView>;

function toEntryView(entry: LoyaltyEntry) {
  return {
    id: entry.id,
    orderId: entry.orderId,
    customerId: entry.customerId,
    kind: entry.kind,
    points: entry.points,
    createdAt: entry.createdAt.toISOString(),
  };
}
