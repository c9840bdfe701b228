// What must hold after any amount of chaos, read from the tables themselves (the provider's and
// ours) and from Temporal. Each check names its rule, how many things it looked at, and one line
// per violation. lib/invariants.ts's two money rules are reused as they are; the rest are here.
import type { Client } from '@temporalio/client';
import { checkMoneyInvariants } from '../../lib/invariants.ts';
import type { Db } from '../../lib/db.ts';
import { checkoutWorkflowIdForOrder } from '../../shared/checkout.ts';
import { NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { CAMPAIGN_ID } from './fixtures.ts';

export interface InvariantResult {
  rule: string;
  checked: number;
  violations: string[];
}

const PAID_STATUSES = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'];
export const MAX_HISTORY_EVENTS = 10_000;

export interface InvariantInputs {
  db: Db;
  client: Client;
  /** Each SKU's stock before the run. */
  initialStock: Map<string, number>;
  /** Each issuance the harness made: its request id and what the API said came of it. */
  issuances: Map<string, { status: string; couponCode: string | null }>;
}

export async function checkInvariants(inputs: InvariantInputs & { crashes: string[] }): Promise<InvariantResult[]> {
  const { client } = inputs;
  const checkoutStatus = (workflowId: string) => client.workflow.getHandle(workflowId).describe().then((d) => d.status.name as string, () => 'NOT_FOUND');
  return [
    ...(await databaseInvariants({ ...inputs, checkoutStatus })),
    ...(await runsSettled(client)),
    // faults may fail requests, never bring a process down (the worker is only ever killed by the harness)
    { rule: 'no process crashed (services, API)', checked: 2, violations: inputs.crashes },
  ];
}

/** The rules over the tables; `checkoutStatus` says whether a checkout still runs (RUNNING) or not. */
export async function databaseInvariants(inputs: Omit<InvariantInputs, 'client'> & { checkoutStatus: (workflowId: string) => Promise<string> }): Promise<InvariantResult[]> {
  const { db } = inputs;
  return [
    await moneyConserved(db),
    await atMostOneCapture(db),
    ...(await libraryMoneyRules(db)),
    await refundsWithinCaptures(db),
    await stockBalances(db, inputs.initialStock),
    await nothingHeldByFinishedCheckouts(db, inputs.checkoutStatus),
    await couponsRedeemedOnce(db),
    await couponIssuance(db, inputs.issuances),
    await loyaltyPoints(db),
    await webhooksAppliedOnce(db),
  ];
}

/** What the provider kept (captured − refunded there − paid back by hand) is what the order says it kept. */
async function moneyConserved(db: Db): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ orderId: string; status: string | null; totalMinor: number; orderRefunded: number; captured: number; refunded: number; manual: number }[]>`
    WITH provider AS (
      SELECT p.merchant_reference AS order_id,
             COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'CAPTURE'), 0)::int AS captured,
             COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'REFUND'), 0)::int AS refunded
        FROM psp_payments p LEFT JOIN psp_transactions t ON t.payment_id = p.id
       GROUP BY p.merchant_reference),
    manual AS (
      SELECT order_id, SUM(amount_minor)::int AS manual FROM payments_refunds WHERE status::text = 'SUCCEEDED_MANUALLY' GROUP BY order_id)
    SELECT COALESCE(o.id, provider.order_id) AS "orderId", o.status::text AS status,
           COALESCE(o.total_minor, 0) AS "totalMinor", COALESCE(o.refunded_minor, 0) AS "orderRefunded",
           COALESCE(provider.captured, 0) AS captured, COALESCE(provider.refunded, 0) AS refunded, COALESCE(manual.manual, 0) AS manual
      FROM orders_orders o
      FULL OUTER JOIN provider ON provider.order_id = o.id
      LEFT JOIN manual ON manual.order_id = COALESCE(o.id, provider.order_id)`;
  const violations: string[] = [];
  for (const r of rows) {
    const kept = r.captured - r.refunded - r.manual;
    const says = r.status !== null && PAID_STATUSES.includes(r.status) ? r.totalMinor - r.orderRefunded : 0;
    if (kept !== says) {
      violations.push(`${r.orderId}: provider kept ${kept} (captured ${r.captured} − refunded ${r.refunded} − manual ${r.manual}), order ${r.status ?? 'missing'} says ${says}`);
    }
  }
  return { rule: 'money conserved per order (captured − refunded = what the order kept)', checked: rows.length, violations };
}

async function atMostOneCapture(db: Db): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ orderId: string; captures: number }[]>`
    SELECT p.merchant_reference AS "orderId", COUNT(t.id) FILTER (WHERE t.type::text = 'CAPTURE')::int AS captures
      FROM psp_payments p LEFT JOIN psp_transactions t ON t.payment_id = p.id
     GROUP BY p.merchant_reference`;
  return {
    rule: 'at most one capture per order',
    checked: rows.length,
    violations: rows.filter((r) => r.captures > 1).map((r) => `${r.orderId}: ${r.captures} captures`),
  };
}

/** lib/invariants.ts, split by rule: what tests assert after each scenario. */
async function libraryMoneyRules(db: Db): Promise<InvariantResult[]> {
  const found = await checkMoneyInvariants(db);
  const [{ captured, paid }] = (await db.$queryRaw<{ captured: number; paid: number }[]>`
    SELECT (SELECT COUNT(DISTINCT payment_id) FROM psp_transactions WHERE type::text = 'CAPTURE')::int AS captured,
           (SELECT COUNT(*) FROM orders_orders WHERE status::text = ANY(${PAID_STATUSES}))::int AS paid`) as [{ captured: number; paid: number }];
  return [
    {
      rule: 'every captured payment belongs to a PAID order or was refunded in full',
      checked: captured,
      violations: found.flatMap((v) =>
        v.rule === 'captured-without-paid-order' ? [`${v.reference} (${v.pspPaymentId}): captured ${v.capturedMinor}, refunded ${v.refundedMinor}, order ${v.orderStatus ?? 'missing'}`] : [],
      ),
    },
    {
      rule: 'every PAID (or refunded) order has exactly one capture',
      checked: paid,
      violations: found.flatMap((v) => (v.rule === 'paid-order-capture-count' ? [`${v.reference}: ${v.captures} captures`] : [])),
    },
  ];
}

async function refundsWithinCaptures(db: Db): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ what: string; id: string; captured: number; refunded: number; pending: number }[]>`
    SELECT 'provider payment' AS what, p.id, p.captured_minor AS captured, p.refunded_minor AS refunded, p.refund_pending_minor AS pending FROM psp_payments p
    UNION ALL
    SELECT 'provider transactions', p.id,
           COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'CAPTURE'), 0)::int,
           COALESCE(SUM(t.amount_minor) FILTER (WHERE t.type::text = 'REFUND'), 0)::int, 0
      FROM psp_payments p LEFT JOIN psp_transactions t ON t.payment_id = p.id GROUP BY p.id
    UNION ALL
    SELECT 'our payment', order_id, captured_minor, refunded_minor, refund_pending_minor FROM payments_payments
    UNION ALL
    SELECT 'order', id, total_minor, refunded_minor, 0 FROM orders_orders WHERE refunded_minor > 0`;
  return {
    rule: 'refunds never exceed captures (provider, our payment, order)',
    checked: rows.length,
    violations: rows
      .filter((r) => r.refunded + r.pending > r.captured)
      .map((r) => `${r.what} ${r.id}: refunded ${r.refunded} + pending ${r.pending} > captured ${r.captured}`),
  };
}

/** on_hand never negative; on_hand + sold (committed − restocked) = the stock before the run; reserved = open reservations. */
async function stockBalances(db: Db, initial: Map<string, number>): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ sku: string; onHand: number; reserved: number; sold: number; held: number }[]>`
    SELECT s.sku, s.on_hand AS "onHand", s.reserved,
           COALESCE(SUM(l.quantity - l.restocked) FILTER (WHERE r.status::text = 'COMMITTED'), 0)::int AS sold,
           COALESCE(SUM(l.quantity) FILTER (WHERE r.status::text = 'RESERVED'), 0)::int AS held
      FROM inventory_stock s
      LEFT JOIN inventory_reservation_lines l ON l.sku = s.sku
      LEFT JOIN inventory_reservations r ON r.order_id = l.order_id
     GROUP BY s.sku, s.on_hand, s.reserved`;
  const violations: string[] = [];
  for (const r of rows) {
    const before = initial.get(r.sku);
    if (r.onHand < 0 || r.reserved < 0) violations.push(`${r.sku}: on hand ${r.onHand}, reserved ${r.reserved}`);
    if (before === undefined) violations.push(`${r.sku}: not in the catalogue before the run`);
    else if (r.onHand + r.sold !== before) violations.push(`${r.sku}: on hand ${r.onHand} + sold ${r.sold} ≠ ${before} at the start`);
    if (r.reserved !== r.held) violations.push(`${r.sku}: reserved ${r.reserved} ≠ ${r.held} in open reservations`);
  }
  return { rule: 'stock never negative; on hand + sold = initial; reserved = open reservations', checked: rows.length, violations };
}

async function nothingHeldByFinishedCheckouts(db: Db, checkoutStatus: (workflowId: string) => Promise<string>): Promise<InvariantResult> {
  const held = await db.$queryRaw<{ what: string; orderId: string }[]>`
    SELECT 'stock reservation' AS what, order_id AS "orderId" FROM inventory_reservations WHERE status::text = 'RESERVED'
    UNION ALL SELECT 'coupon lock', order_id FROM coupons_locks WHERE status::text = 'LOCKED'
    UNION ALL SELECT 'coupon ' || code || ' locked', COALESCE(locked_by, '(nobody)') FROM coupons_coupons WHERE status::text = 'LOCKED'`;
  const [{ checked }] = (await db.$queryRaw<{ checked: number }[]>`
    SELECT ((SELECT COUNT(*) FROM inventory_reservations) + (SELECT COUNT(*) FROM coupons_locks))::int AS checked`) as [{ checked: number }];
  const violations: string[] = [];
  for (const { what, orderId } of held) {
    const workflowId = checkoutWorkflowIdForOrder(orderId);
    const status = workflowId ? await checkoutStatus(workflowId) : 'NOT_FOUND';
    if (status !== 'RUNNING') violations.push(`${what} for ${orderId}, whose checkout is ${status}`);
  }
  return { rule: 'no stock reservation or coupon lock held by a finished checkout', checked, violations };
}

async function couponsRedeemedOnce(db: Db): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ code: string; status: string; redemptions: number }[]>`
    SELECT c.code, c.status::text AS status, COUNT(l.order_id) FILTER (WHERE l.status::text = 'REDEEMED')::int AS redemptions
      FROM coupons_coupons c LEFT JOIN coupons_locks l ON l.code = c.code
     GROUP BY c.code, c.status`;
  const violations = rows
    .filter((r) => r.redemptions > 1 || (r.status === 'REDEEMED') !== (r.redemptions === 1))
    .map((r) => `${r.code}: ${r.status} with ${r.redemptions} redeemed locks`);
  return { rule: 'each coupon redeemed by at most one order, and marked so', checked: rows.length, violations };
}

async function couponIssuance(db: Db, issuances: InvariantInputs['issuances']): Promise<InvariantResult> {
  const [campaign] = await db.$queryRaw<{ quota: number; perCustomer: number; reserved: number; confirmed: number; grants: number }[]>`
    SELECT c.total_quota AS quota, c.per_customer_limit AS "perCustomer", c.reserved, c.confirmed,
           (SELECT COUNT(*) FROM coupons_grants g WHERE g.campaign_id = c.id)::int AS grants
      FROM coupons_campaigns c WHERE c.id = ${CAMPAIGN_ID}`;
  const violations: string[] = [];
  if (!campaign) return { rule: 'coupons issued ≤ quota, one per grant request', checked: 0, violations: [`campaign ${CAMPAIGN_ID} missing`] };
  if (campaign.grants > campaign.quota) violations.push(`${campaign.grants} coupons granted, quota ${campaign.quota}`);
  if (campaign.confirmed !== campaign.grants) violations.push(`campaign counts ${campaign.confirmed} confirmed, ${campaign.grants} grants exist`);
  if (campaign.reserved !== 0) violations.push(`${campaign.reserved} quota reservations still held after every issuance ended`);
  const perCustomer = await db.$queryRaw<{ customerId: string; grants: number }[]>`
    SELECT customer_id AS "customerId", COUNT(*)::int AS grants FROM coupons_grants WHERE campaign_id = ${CAMPAIGN_ID}
     GROUP BY customer_id HAVING COUNT(*) > ${campaign.perCustomer}`;
  for (const r of perCustomer) violations.push(`${r.customerId}: ${r.grants} coupons, limit ${campaign.perCustomer}`);
  const grants = new Map(
    (await db.$queryRaw<{ requestId: string; couponCode: string }[]>`
      SELECT request_id AS "requestId", coupon_code AS "couponCode" FROM coupons_grants WHERE campaign_id = ${CAMPAIGN_ID}`).map((g) => [g.requestId, g.couponCode]),
  );
  for (const [requestId, result] of issuances) {
    const granted = grants.get(requestId);
    if (result.status === 'ISSUED' && granted !== result.couponCode) violations.push(`${requestId}: ISSUED ${result.couponCode}, granted ${granted ?? 'nothing'}`);
    if (result.status !== 'ISSUED' && granted !== undefined) violations.push(`${requestId}: ${result.status}, yet coupon ${granted} was granted`);
  }
  return { rule: 'coupons issued ≤ quota and ≤ per customer, one per grant request', checked: issuances.size, violations };
}

/**
 * Every account's balance is the sum of its entries; each paid order earned floor(total / 100)
 * once and nothing else earned anything; reversals: all of it for a fully refunded order, else
 * floor(award × refund / total) per refund.
 */
async function loyaltyPoints(db: Db): Promise<InvariantResult> {
  const accounts = await db.$queryRaw<{ customerId: string; points: number; entries: number }[]>`
    SELECT a.customer_id AS "customerId", a.points, COALESCE((SELECT SUM(e.points) FROM loyalty_entries e WHERE e.customer_id = a.customer_id), 0)::int AS entries
      FROM loyalty_accounts a`;
  const orders = await db.$queryRaw<{ orderId: string; status: string | null; totalMinor: number; awards: number; awarded: number; reversed: number; refunds: number[] }[]>`
    WITH ids AS (SELECT id AS order_id FROM orders_orders UNION SELECT order_id FROM loyalty_entries)
    SELECT ids.order_id AS "orderId", o.status::text AS status, COALESCE(o.total_minor, 0) AS "totalMinor",
           (SELECT COUNT(*) FROM loyalty_entries e WHERE e.order_id = ids.order_id AND e.kind::text = 'AWARD')::int AS awards,
           COALESCE((SELECT SUM(points) FROM loyalty_entries e WHERE e.order_id = ids.order_id AND e.kind::text = 'AWARD'), 0)::int AS awarded,
           COALESCE((SELECT -SUM(points) FROM loyalty_entries e WHERE e.order_id = ids.order_id AND e.kind::text = 'REVERSE'), 0)::int AS reversed,
           COALESCE((SELECT array_agg(amount_minor) FROM orders_refunds r WHERE r.order_id = ids.order_id), '{}') AS refunds
      FROM ids LEFT JOIN orders_orders o ON o.id = ids.order_id`;
  const violations: string[] = [];
  for (const a of accounts) if (a.points !== a.entries) violations.push(`${a.customerId}: balance ${a.points}, entries add up to ${a.entries}`);
  for (const o of orders) {
    const paid = o.status !== null && PAID_STATUSES.includes(o.status);
    const earned = paid ? Math.floor(o.totalMinor / 100) : 0;
    if (o.awards > 1 || o.awarded !== earned) violations.push(`${o.orderId} (${o.status ?? 'no order'}): awarded ${o.awarded} in ${o.awards} entries, earned ${earned}`);
    const reversals =
      o.status === 'REFUNDED' ? o.awarded : o.refunds.reduce((sum, amount) => sum + (o.totalMinor > 0 ? Math.floor((o.awarded * amount) / o.totalMinor) : 0), 0);
    if (paid && o.reversed !== reversals) violations.push(`${o.orderId} (${o.status}): reversed ${o.reversed}, refunds call for ${reversals}`);
  }
  return { rule: 'loyalty points = what paid orders earned − reversals', checked: accounts.length + orders.length, violations };
}

/** Delivered events were recorded (once: the event id is the key) and handled; nothing recorded that the provider did not send. */
async function webhooksAppliedOnce(db: Db): Promise<InvariantResult> {
  const rows = await db.$queryRaw<{ eventId: string; problem: string }[]>`
    SELECT e.id AS "eventId", 'delivered, never recorded by the API' AS problem
      FROM psp_events e JOIN psp_deliveries d ON d.event_id = e.id
     WHERE d.status::text = 'DELIVERED' AND NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.event_id = e.id)
    UNION ALL
    SELECT w.event_id, 'recorded, but the provider sent no such event' FROM webhook_events w
     WHERE NOT EXISTS (SELECT 1 FROM psp_events e WHERE e.id = w.event_id AND e.type = w.type AND e.payment_id = w.psp_payment_id)
    UNION ALL
    SELECT event_id, 'recorded, never handed to its workflow' FROM webhook_events WHERE signal_outcome IS NULL`;
  const [{ checked }] = (await db.$queryRaw<{ checked: number }[]>`SELECT COUNT(*)::int AS checked FROM psp_events`) as [{ checked: number }];
  return { rule: 'every webhook event recorded once and handled once', checked, violations: rows.map((r) => `${r.eventId}: ${r.problem}`) };
}

/** Every run finished with a result or waits for a person, visibly; none has a runaway history. */
async function runsSettled(client: Client): Promise<InvariantResult[]> {
  const settled: InvariantResult = { rule: 'every run finished, or waits for a person (NeedsAttention)', checked: 0, violations: [] };
  const small: InvariantResult = { rule: `no run over ${MAX_HISTORY_EVENTS.toLocaleString('en')} history events`, checked: 0, violations: [] };
  for await (const run of client.workflow.list()) {
    settled.checked += 1;
    small.checked += 1;
    const status = run.status.name;
    if (status === 'RUNNING' && run.typedSearchAttributes.get(NeedsAttentionKey) !== true) {
      settled.violations.push(`${run.workflowId} (${run.type}) still running, not waiting for a person`);
    } else if (status !== 'RUNNING' && status !== 'COMPLETED' && status !== 'CONTINUED_AS_NEW') {
      settled.violations.push(`${run.workflowId} (${run.type}) ended ${status}`);
    }
    if (run.historyLength > MAX_HISTORY_EVENTS) small.violations.push(`${run.workflowId} (${run.type}): ${run.historyLength} events`);
  }
  return [settled, small];
}
