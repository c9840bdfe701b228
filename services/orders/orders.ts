// Orders and their status machine:
//   PENDING → AWAITING_PAYMENT → PAID, and PENDING | AWAITING_PAYMENT → CANCELLED;
//   refunds: PAID | PARTIALLY_REFUNDED → PARTIALLY_REFUNDED | REFUNDED (recordRefund).
// Each transition locks the order row (SELECT ... FOR UPDATE), checks the move is
// legal, updates the order and appends to orders_status_changes in one transaction.
// Repeating the move that was already made answers with the order unchanged.
//
// An order is priced here, from the catalogue (the inventory service), never from the caller:
// a caller may only quote the price it showed, and a quote that differs is refused.
import type { Db } from '../../lib/db.ts';
import { conflict, invalidRequest, notFound } from '../../lib/http-errors.ts';
import type { OrderStatus, Prisma } from '../../generated/prisma/client.ts';
import { orderTotalProblem } from '../../shared/limits.ts';
import { inTransaction, type Tx } from '../common/transaction.ts';
import type { CatalogueClient } from '../inventory/catalogue-client.ts';

export interface OrderLineInput {
  sku: string;
  quantity: number;
  /** The unit price the caller showed the customer; the order is refused if the catalogue's differs. */
  quotedUnitPriceMinor?: number;
}

export interface NewOrder {
  orderId: string;
  checkoutId: string;
  customerId: string;
  currency: string;
  lines: OrderLineInput[];
}

interface PricedLine {
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

const WITH_DETAILS = {
  lines: { orderBy: { sku: 'asc' } },
  history: { orderBy: { id: 'asc' } },
  refunds: { orderBy: [{ createdAt: 'asc' }, { refundId: 'asc' }] },
} satisfies Prisma.OrderInclude;
type OrderWithDetails = Prisma.OrderGetPayload<{ include: typeof WITH_DETAILS }>;

export type OrderView = ReturnType<typeof toView>;

/**
 * Creates the order, priced from the catalogue; an order with this id already existing is
 * returned as is (it was priced when it was created, whatever the catalogue says now).
 */
export async function createOrder(
  db: Db,
  catalogue: CatalogueClient,
  input: NewOrder,
): Promise<{ created: boolean; order: OrderView }> {
  const existing = await db.order.findUnique({ where: { id: input.orderId }, include: WITH_DETAILS });
  if (existing) return { created: false, order: toView(existing) };
  const lines = await priceLines(catalogue, input);
  const subtotalMinor = lines.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0);
  const tooLarge = orderTotalProblem(subtotalMinor);
  if (tooLarge !== null) throw invalidRequest(tooLarge, 'lines', { subtotalMinor });
  return inTransaction(db, async (tx) => {
    const claimed = await tx.$executeRaw`
      INSERT INTO orders_orders (id, checkout_id, customer_id, currency, subtotal_minor, discount_minor, total_minor, status, created_at, updated_at)
      VALUES (${input.orderId}, ${input.checkoutId}, ${input.customerId}, ${input.currency}, ${subtotalMinor}, 0, ${subtotalMinor}, 'PENDING', now(), now())
      ON CONFLICT (id) DO NOTHING`;
    if (claimed === 1) {
      await tx.orderLine.createMany({ data: lines.map((line) => ({ orderId: input.orderId, ...line })) });
      await tx.orderStatusChange.create({ data: { orderId: input.orderId, fromStatus: null, toStatus: 'PENDING' } });
    }
    const order = await tx.order.findUniqueOrThrow({ where: { id: input.orderId }, include: WITH_DETAILS });
    return { created: claimed === 1, order: toView(order) };
  });
}

/**
 * Each line at the catalogue's price. Refuses (409, nothing written) a SKU the catalogue does not
 * sell, one it sells in another currency, and a quote that is not the catalogue's price.
 */
async function priceLines(catalogue: CatalogueClient, input: NewOrder): Promise<PricedLine[]> {
  const answer = await catalogue.lookup(input.lines.map((line) => line.sku));
  const bySku = new Map(answer.items.map((item) => [item.sku, item]));
  return input.lines.map(({ sku, quantity, quotedUnitPriceMinor }) => {
    const item = bySku.get(sku);
    if (!item) throw conflict('unknown_sku', `unknown sku ${sku}`, { sku });
    if (item.currency !== input.currency) {
      throw conflict('currency_mismatch', `${sku} is sold in ${item.currency}, not ${input.currency}`, {
        sku,
        orderCurrency: input.currency,
        catalogueCurrency: item.currency,
      });
    }
    if (quotedUnitPriceMinor !== undefined && quotedUnitPriceMinor !== item.priceMinor) {
      throw conflict('price_changed', `the price of ${sku} is ${item.priceMinor}, not the quoted ${quotedUnitPriceMinor}`, {
        sku,
        quotedUnitPriceMinor,
        catalogueUnitPriceMinor: item.priceMinor,
      });
    }
    return { sku, quantity, unitPriceMinor: item.priceMinor };
  });
}

export async function getOrder(db: Db, orderId: string): Promise<OrderView> {
  const order = await db.order.findUnique({ where: { id: orderId }, include: WITH_DETAILS });
  if (!order) throw notFound(`unknown order ${orderId}`);
  return toView(order);
}

/** The most order ids one lookup names. */
export const MAX_LOOKUP = 500;

/** These orders (for reconciliation, a page of references at a time), in the order asked; unknown ids are left out. */
export async function lookupOrders(db: Db, orderIds: string[]): Promise<OrderView[]> {
  const found = new Map((await db.order.findMany({ where: { id: { in: orderIds } }, include: WITH_DETAILS })).map((o) => [o.id, o]));
  return orderIds.flatMap((orderId) => (found.has(orderId) ? [toView(found.get(orderId)!)] : []));
}

export function awaitPayment(db: Db, orderId: string, input: { discountMinor: number; couponCode: string | null }) {
  return transition(db, orderId, 'AWAITING_PAYMENT', (order) => {
    if (input.discountMinor > order.subtotalMinor) {
      throw invalidRequest(`discount ${input.discountMinor} exceeds the subtotal ${order.subtotalMinor}`, 'discountMinor');
    }
    return {
      discountMinor: input.discountMinor,
      couponCode: input.couponCode,
      totalMinor: order.subtotalMinor - input.discountMinor,
    };
  });
}

export function markPaid(db: Db, orderId: string, input: { paymentId: string; amountMinor: number }) {
  return transition(db, orderId, 'PAID', (order) => {
    if (input.amountMinor !== order.totalMinor) {
      throw conflict('amount_mismatch', `payment of ${input.amountMinor} does not match the order total ${order.totalMinor}`, {
        totalMinor: order.totalMinor,
        amountMinor: input.amountMinor,
      });
    }
    return { paymentId: input.paymentId };
  });
}

export function cancelOrder(db: Db, orderId: string, input: { reason: string }) {
  return transition(db, orderId, 'CANCELLED', () => ({ cancelReason: input.reason }), input.reason);
}

const ALLOWED_FROM: Record<OrderStatus, OrderStatus[]> = {
  PENDING: [],
  AWAITING_PAYMENT: ['PENDING'],
  PAID: ['AWAITING_PAYMENT'],
  PARTIALLY_REFUNDED: ['PAID', 'PARTIALLY_REFUNDED'],
  REFUNDED: ['PAID', 'PARTIALLY_REFUNDED'],
  CANCELLED: ['PENDING', 'AWAITING_PAYMENT'],
};

// A move already made, or overtaken by a later one: a late "pay" of a refunded order is answered unchanged.
const ALREADY_REACHED: Partial<Record<OrderStatus, OrderStatus[]>> = {
  PAID: ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'],
};

interface LockedOrder {
  status: OrderStatus;
  subtotalMinor: number;
  totalMinor: number;
  refundedMinor: number;
}

/**
 * Records a refund once per refund id and moves the order to PARTIALLY_REFUNDED, or
 * REFUNDED once everything paid is refunded. Under the order's row lock, so
 * concurrent refunds never take refundedMinor past the total.
 */
export async function recordRefund(
  db: Db,
  orderId: string,
  input: { refundId: string; amountMinor: number },
): Promise<{ created: boolean; order: OrderView }> {
  return inTransaction(db, async (tx) => {
    const order = await lockOrder(tx, orderId);
    const earlier = await tx.orderRefund.findUnique({ where: { refundId: input.refundId } });
    if (earlier) {
      if (earlier.orderId !== orderId) {
        throw conflict('refund_id_reused', `refund ${input.refundId} belongs to order ${earlier.orderId}`, { orderId: earlier.orderId });
      }
      return { created: false, order: await readOrder(tx, orderId) };
    }
    if (!ALLOWED_FROM.PARTIALLY_REFUNDED.includes(order.status)) {
      throw conflict('illegal_transition', `order ${orderId} cannot be refunded while ${order.status}`, { from: order.status, to: 'REFUNDED' });
    }
    const refundedMinor = order.refundedMinor + input.amountMinor;
    if (refundedMinor > order.totalMinor) {
      throw conflict('refund_exceeds_paid', `refunding ${input.amountMinor} would take order ${orderId} past its total ${order.totalMinor}`, {
        totalMinor: order.totalMinor,
        refundedMinor: order.refundedMinor,
        refundableMinor: order.totalMinor - order.refundedMinor,
      });
    }
    const to: OrderStatus = refundedMinor === order.totalMinor ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
    await tx.orderRefund.create({ data: { refundId: input.refundId, orderId, amountMinor: input.amountMinor } });
    await tx.order.update({ where: { id: orderId }, data: { refundedMinor, status: to } });
    if (to !== order.status) {
      await tx.orderStatusChange.create({ data: { orderId, fromStatus: order.status, toStatus: to, reason: `refund ${input.refundId}` } });
    }
    return { created: true, order: await readOrder(tx, orderId) };
  });
}

async function transition(
  db: Db,
  orderId: string,
  to: OrderStatus,
  changes: (order: LockedOrder) => Prisma.OrderUpdateInput,
  reason?: string,
): Promise<OrderView> {
  return inTransaction(db, async (tx) => {
    const order = await lockOrder(tx, orderId);
    if (!(ALREADY_REACHED[to] ?? [to]).includes(order.status)) {
      if (!ALLOWED_FROM[to].includes(order.status)) {
        throw conflict('illegal_transition', `order ${orderId} cannot go from ${order.status} to ${to}`, {
          from: order.status,
          to,
        });
      }
      await tx.order.update({ where: { id: orderId }, data: { ...changes(order), status: to } });
      await tx.orderStatusChange.create({ data: { orderId, fromStatus: order.status, toStatus: to, reason } });
    }
    return readOrder(tx, orderId);
  });
}

async function readOrder(tx: Tx, orderId: string): Promise<OrderView> {
  return toView(await tx.order.findUniqueOrThrow({ where: { id: orderId }, include: WITH_DETAILS }));
}

async function lockOrder(tx: Tx, orderId: string): Promise<LockedOrder> {
  const [row] = await tx.$queryRaw<LockedOrder[]>`
    SELECT status::text AS status, subtotal_minor AS "subtotalMinor", total_minor AS "totalMinor", refunded_minor AS "refundedMinor"
      FROM orders_orders WHERE id = ${orderId} FOR UPDATE`;
  if (!row) throw notFound(`unknown order ${orderId}`);
  return row;
}

function toView(order: OrderWithDetails) {
  return {
    id: order.id,
    checkoutId: order.checkoutId,
    customerId: order.customerId,
    currency: order.currency,
    subtotalMinor: order.subtotalMinor,
    discountMinor: order.discountMinor,
    totalMinor: order.totalMinor,
    couponCode: order.couponCode,
    paymentId: order.paymentId,
    status: order.status,
    cancelReason: order.cancelReason,
    refundedMinor: order.refundedMinor,
    refunds: order.refunds.map((r) => ({ refundId: r.refundId, amountMinor: r.amountMinor, at: r.createdAt.toISOString() })),
    lines: order.lines.map(({ sku, quantity, unitPriceMinor }) => ({ sku, quantity, unitPriceMinor })),
    history: order.history.map((h) => ({ from: h.fromStatus, to: h.toStatus, reason: h.reason, at: h.at.toISOString() })),
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
  };
}
