// Restocks: sold items put back on hand after a refund, once per restock id.
// Only a COMMITTED reservation's SKUs can come back, and never more than was sold:
// each reservation line counts what was restocked, raised with a conditional UPDATE
// (`... WHERE restocked + q <= quantity`, also a DB check), under the reservation's
// row lock, so concurrent or repeated restocks can never exceed the sale. SKUs are
// touched in sorted order, like reservations, so two transactions never deadlock.
import type { Db } from '../../lib/db.ts';
import { conflict } from '../../lib/http-errors.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import type { StockLine } from './reservations.ts';

export interface RestockView {
  restockId: string;
  orderId: string;
  lines: StockLine[];
}

export async function restock(
  db: Db,
  input: { restockId: string; orderId: string; lines: StockLine[] },
): Promise<{ created: boolean; restock: RestockView }> {
  return inTransaction(db, async (tx) => {
    const claimed = await tx.$executeRaw`
      INSERT INTO inventory_restocks (restock_id, order_id, created_at) VALUES (${input.restockId}, ${input.orderId}, now())
      ON CONFLICT (restock_id) DO NOTHING`;
    if (claimed === 0) {
      const existing = await readRestock(tx, input.restockId);
      if (existing.orderId !== input.orderId) {
        throw conflict('restock_id_reused', `restock ${input.restockId} belongs to order ${existing.orderId}`, { orderId: existing.orderId });
      }
      return { created: false, restock: existing };
    }

    const [reservation] = await tx.$queryRaw<{ status: string }[]>`
      SELECT status::text AS status FROM inventory_reservations WHERE order_id = ${input.orderId} FOR UPDATE`;
    if (reservation?.status !== 'COMMITTED') {
      throw conflict('not_sold', `order ${input.orderId} has no committed reservation to restock`, {
        status: reservation?.status ?? null,
      });
    }
    const lines = [...input.lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    for (const { sku, quantity } of lines) {
      const counted = await tx.$executeRaw`
        UPDATE inventory_reservation_lines SET restocked = restocked + ${quantity}
         WHERE order_id = ${input.orderId} AND sku = ${sku} AND restocked + ${quantity} <= quantity`;
      if (counted === 0) throw await exceedsSold(tx, input.orderId, sku, quantity); // rolls back the whole restock
      await tx.$executeRaw`UPDATE inventory_stock SET on_hand = on_hand + ${quantity}, updated_at = now() WHERE sku = ${sku}`;
    }
    await tx.restockLine.createMany({ data: lines.map((l) => ({ restockId: input.restockId, ...l })) });
    return { created: true, restock: { restockId: input.restockId, orderId: input.orderId, lines } };
  });
}

async function exceedsSold(tx: Tx, orderId: string, sku: string, requested: number) {
  const line = await tx.reservationLine.findUnique({ where: { orderId_sku: { orderId, sku } } });
  const sold = line?.quantity ?? 0;
  const restocked = line?.restocked ?? 0;
  return conflict('restock_exceeds_sold', `cannot restock ${requested} of ${sku}: ${sold} sold, ${restocked} already restocked`, {
    sku,
    sold,
    restocked,
    requested,
  });
}

async function readRestock(tx: Tx, restockId: string): Promise<RestockView> {
  const found = await tx.restock.findUniqueOrThrow({ where: { restockId }, include: { lines: { orderBy: { sku: 'asc' } } } });
  return { restockId, orderId: found.orderId, lines: found.lines.map(({ sku, quantity }) => ({ sku, quantity })) };
}
