// Stock reservations, keyed by order. Reserve → commit (sold) or release (undo).
// Concurrency: the reservation row is claimed first (INSERT ... ON CONFLICT DO
// NOTHING), so one order reserves once; stock is taken with a conditional UPDATE
// (`... WHERE on_hand - reserved >= q`), so concurrent orders can never oversell;
// SKUs are always touched in sorted order, so two transactions never deadlock.
// Anti-hanging: a release that finds no reservation leaves a RELEASED tombstone
// that refuses the late reserve.
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';

export interface StockLine {
  sku: string;
  quantity: number;
}

export interface ReservationView {
  orderId: string;
  status: 'RESERVED' | 'COMMITTED' | 'RELEASED';
  lines: StockLine[];
  /** true when released before anything was reserved */
  tombstone?: true;
}

export async function reserveStock(
  db: Db,
  input: { orderId: string; lines: StockLine[] },
): Promise<{ created: boolean; reservation: ReservationView }> {
  return inTransaction(db, async (tx) => {
    const claimed = await tx.$executeRaw`
      INSERT INTO inventory_reservations (order_id, status, created_at, updated_at)
      VALUES (${input.orderId}, 'RESERVED', now(), now())
      ON CONFLICT (order_id) DO NOTHING`;
    if (claimed === 0) {
      const existing = await lockReservation(tx, input.orderId);
      if (existing.status === 'RELEASED') throw released(input.orderId);
      return { created: false, reservation: existing };
    }

    const lines = [...input.lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    for (const { sku, quantity } of lines) {
      const taken = await tx.$executeRaw`
        UPDATE inventory_stock SET reserved = reserved + ${quantity}, updated_at = now()
         WHERE sku = ${sku} AND on_hand - reserved >= ${quantity}`;
      if (taken === 0) throw await whyNotReserved(tx, sku, quantity); // rolls back the whole reservation
    }
    await tx.reservationLine.createMany({ data: lines.map((l) => ({ orderId: input.orderId, ...l })) });
    return { created: true, reservation: { orderId: input.orderId, status: 'RESERVED', lines } };
  });
}

export async function commitReservation(db: Db, orderId: string): Promise<ReservationView> {
  return inTransaction(db, async (tx) => {
    const reservation = await lockReservation(tx, orderId);
    if (reservation.status === 'COMMITTED') return reservation;
    if (reservation.status === 'RELEASED') throw released(orderId);
    for (const { sku, quantity } of reservation.lines) {
      await tx.$executeRaw`
        UPDATE inventory_stock SET on_hand = on_hand - ${quantity}, reserved = reserved - ${quantity}, updated_at = now()
         WHERE sku = ${sku}`;
    }
    return setStatus(tx, reservation, 'COMMITTED');
  });
}

export async function releaseReservation(db: Db, orderId: string): Promise<ReservationView> {
  return inTransaction(db, async (tx) => {
    const tombstone = await tx.$executeRaw`
      INSERT INTO inventory_reservations (order_id, status, created_at, updated_at)
      VALUES (${orderId}, 'RELEASED', now(), now())
      ON CONFLICT (order_id) DO NOTHING`;
    if (tombstone === 1) return { orderId, status: 'RELEASED', lines: [], tombstone: true };

    const reservation = await lockReservation(tx, orderId);
    if (reservation.status === 'RELEASED') return reservation;
    if (reservation.status === 'COMMITTED') {
      throw conflict('already_committed', `reservation for order ${orderId} is already committed`);
    }
    for (const { sku, quantity } of reservation.lines) {
      await tx.$executeRaw`
        UPDATE inventory_stock SET reserved = reserved - ${quantity}, updated_at = now() WHERE sku = ${sku}`;
    }
    return setStatus(tx, reservation, 'RELEASED');
  });
}

export async function getReservation(db: Db, orderId: string): Promise<ReservationView> {
  const reservation = await db.reservation.findUnique({
    where: { orderId },
    include: { lines: { orderBy: { sku: 'asc' } } },
  });
  if (!reservation) throw notFound(`no reservation for order ${orderId}`);
  return view(reservation);
}

async function lockReservation(tx: Tx, orderId: string): Promise<ReservationView> {
  const [row] = await tx.$queryRaw<{ status: ReservationView['status'] }[]>`
    SELECT status::text AS status FROM inventory_reservations WHERE order_id = ${orderId} FOR UPDATE`;
  if (!row) throw notFound(`no reservation for order ${orderId}`);
  const lines = await tx.reservationLine.findMany({ where: { orderId }, orderBy: { sku: 'asc' } });
  return view({ orderId, status: row.status, lines });
}

async function setStatus(tx: Tx, reservation: ReservationView, status: ReservationView['status']): Promise<ReservationView> {
  await tx.reservation.update({ where: { orderId: reservation.orderId }, data: { status } });
  return { ...reservation, status };
}

async function whyNotReserved(tx: Tx, sku: string, requested: number) {
  const item = await tx.stockItem.findUnique({ where: { sku } });
  if (!item) return conflict('unknown_sku', `unknown sku ${sku}`, { sku });
  return conflict('out_of_stock', `only ${item.onHand - item.reserved} of ${sku} available, ${requested} requested`, {
    sku,
    requested,
    available: item.onHand - item.reserved,
  });
}

function view(r: { orderId: string; status: ReservationView['status']; lines: StockLine[] }): ReservationView {
  const lines = r.lines.map(({ sku, quantity }) => ({ sku, quantity }));
  return {
    orderId: r.orderId,
    status: r.status,
    lines,
    ...(r.status === 'RELEASED' && lines.length === 0 ? { tombstone: true as const } : {}),
  };
}

function released(orderId: string) {
  return conflict('reservation_released', `reservation for order ${orderId} was already released`);
}
