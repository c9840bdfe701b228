// The chaos harness (scripts/chaos.ts, `npm run chaos`). Its invariants are not vacuous: a
// database broken in every way they name fails each of them, and a consistent one passes. And at
// its default size, as a child process with a stack of its own, it ends with exit status 0 and an
// invariants table without a single violation, while the faults happened — the schedule printed,
// the worker killed, the dev server restarted, database connections cut, services failing — as
// the run's own counts (read from metrics and tables) show.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CAMPAIGN_ID } from '../scripts/chaos/fixtures.ts';
import { databaseInvariants } from '../scripts/chaos/invariants.ts';
import { apiAnsweredNo500 } from '../scripts/chaos/report.ts';
import { createTestDatabase } from './support/database.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUN_TIMEOUT_MS = 9 * 60_000;

function runChaos(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/chaos.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // SIGTERM lets the harness stop its stack and drop its database before it exits
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The number after `label` on its line of the run's report. */
function countAfter(output: string, label: string): number {
  const line = output.split('\n').find((l) => l.trimStart().startsWith(label));
  assert.ok(line, `the report has no line "${label}"`);
  return Number(line.slice(line.indexOf(label) + label.length).trim().split(/[\s/]+/)[0]);
}

test('each invariant catches what it names, and a consistent database passes them all', async () => {
  const t = await createTestDatabase('cf_chaos_inv');
  try {
    const { db } = t;
    const hour = 60 * 60_000;
    await db.couponCampaign.create({
      data: { id: CAMPAIGN_ID, name: 'c', totalQuota: 1, perCustomerLimit: 1, validFrom: new Date(Date.now() - hour), validUntil: new Date(Date.now() + hour), kind: 'FIXED', value: 100, currency: 'EUR', confirmed: 1 },
    });
    await db.stockItem.create({ data: { sku: 'INV-X', name: 'x', priceMinor: 100, currency: 'EUR', onHand: 5, reserved: 0 } });
    await db.coupon.create({ data: { code: 'GRANT-1', kind: 'FIXED', value: 100, currency: 'EUR', campaignId: CAMPAIGN_ID } });
    await db.couponGrant.create({ data: { requestId: 'req-1', campaignId: CAMPAIGN_ID, customerId: 'c1', couponCode: 'GRANT-1' } });
    const consistent = await databaseInvariants({
      db,
      initialStock: new Map([['INV-X', 5]]),
      issuances: new Map([['req-1', { status: 'ISSUED', couponCode: 'GRANT-1' }]]),
      checkoutStatus: async () => 'COMPLETED',
    });
    assert.deepEqual(consistent.flatMap((r) => r.violations), []);

    const order = (id: string, status: 'PAID' | 'CANCELLED', totalMinor = 1000) =>
      db.order.create({ data: { id, checkoutId: `checkout-${id}`, customerId: 'c1', currency: 'EUR', subtotalMinor: totalMinor, totalMinor, status } });
    const provider = async (id: string, reference: string, moves: ['CAPTURE' | 'REFUND', number][]) => {
      await db.pspPayment.create({ data: { id, merchantReference: reference, amountMinor: 1000, currency: 'EUR', cardLast4: '4242', status: 'CAPTURED' } });
      for (const [i, [type, amountMinor]] of moves.entries()) await db.pspTransaction.create({ data: { id: `${id}_${i}`, paymentId: id, type, amountMinor } });
    };
    await order('order-twice', 'PAID'); // captured twice
    await provider('psp_twice', 'order-twice', [['CAPTURE', 1000], ['CAPTURE', 1000]]);
    await order('order-kept', 'CANCELLED'); // money kept for a cancelled order, stock and coupon still held
    await provider('psp_kept', 'order-kept', [['CAPTURE', 1000]]);
    await order('order-over', 'PAID'); // refunded more than captured
    await provider('psp_over', 'order-over', [['CAPTURE', 1000], ['REFUND', 1200]]);
    await db.stockItem.update({ where: { sku: 'INV-X' }, data: { onHand: 3, reserved: 1 } }); // 2 gone, 1 reserved by nobody
    await db.reservation.create({ data: { orderId: 'order-kept', status: 'RESERVED', lines: { create: [{ sku: 'INV-X', quantity: 2 }] } } });
    await db.coupon.create({ data: { code: 'USED-TWICE', kind: 'FIXED', value: 100, currency: 'EUR', status: 'REDEEMED' } });
    await db.couponLock.createMany({ data: [{ orderId: 'order-twice', code: 'USED-TWICE', status: 'REDEEMED' }, { orderId: 'order-over', code: 'USED-TWICE', status: 'REDEEMED' }] });
    await db.couponLock.create({ data: { orderId: 'order-kept', code: 'GRANT-1', status: 'LOCKED' } });
    await db.coupon.create({ data: { code: 'GRANT-2', kind: 'FIXED', value: 100, currency: 'EUR', campaignId: CAMPAIGN_ID } });
    await db.couponGrant.create({ data: { requestId: 'req-2', campaignId: CAMPAIGN_ID, customerId: 'c1', couponCode: 'GRANT-2' } }); // over quota and limit
    await db.loyaltyAccount.create({ data: { customerId: 'c1', points: 50 } }); // the entries add up to 10
    await db.loyaltyEntry.create({ data: { customerId: 'c1', orderId: 'order-kept', kind: 'AWARD', points: 10 } }); // earned by no paid order
    await db.webhookEvent.create({ data: { eventId: 'evt_forged', type: 'payment.captured', pspPaymentId: 'psp_none', orderId: 'order-x', payload: {} } });

    const broken = await databaseInvariants({
      db,
      initialStock: new Map([['INV-X', 5]]),
      issuances: new Map([['req-2', { status: 'EXHAUSTED', couponCode: null }]]),
      checkoutStatus: async () => 'COMPLETED',
    });
    for (const result of broken) assert.ok(result.violations.length > 0, `"${result.rule}" found nothing wrong`);
  } finally {
    await t.drop();
  }
});

test("the API's 500s are violations, read per route from its metrics", async () => {
  let metrics = '';
  const server = createServer((_req, res) => res.end(metrics)).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const line = (route: string, status: string, n: number) =>
      `commerce_http_request_duration_seconds_count{service="api",method="GET",route="${route}",status="${status}"} ${n}`;
    metrics = [line('/checkouts/:id', '200', 40), line('/checkouts/:id', '503', 3)].join('\n');
    assert.deepEqual((await apiAnsweredNo500(url)).violations, []);
    metrics = [line('/checkouts/:id', '200', 40), line('/coupons/issuances/:requestId', '500', 7)].join('\n');
    const found = await apiAnsweredNo500(url);
    assert.equal(found.checked, 47);
    assert.deepEqual(found.violations, ['7 answers 500 on /coupons/issuances/:requestId']);
  } finally {
    server.close();
  }
});

test('a default-size chaos run keeps every invariant while every fault happens', { timeout: RUN_TIMEOUT_MS + 60_000 }, async () => {
  const { code, output } = await runChaos();
  const tail = output.split('\n').slice(-80).join('\n');
  assert.equal(code, 0, `chaos run exited ${code}:\n${tail}`);
  assert.match(output, /chaos run PASSED: 0 violations/);

  // the table: one row per invariant, each with 0 violations
  const table = output.slice(output.indexOf('invariants:'));
  const rows = table.split('\n').filter((l) => /\s\d+\s+\d+\s*$/.test(l) && !l.startsWith('total'));
  assert.ok(rows.length >= 12, `expected at least 12 invariant rows:\n${table}`);
  for (const row of rows) assert.match(row, /\s0\s*$/, `violations in: ${row}`);

  // the schedule was printed before the load, and each kind of fault took place
  const schedule = output.slice(output.indexOf('fault schedule'), output.indexOf('fault t+'));
  for (const kind of ['service faults on every service', 'webhook chaos', 'paid after timeout on', 'refuses every refund', 'worker SIGKILL', 'Temporal dev server stopped', 'pg_terminate_backend']) {
    assert.ok(schedule.includes(kind), `the schedule does not list "${kind}":\n${schedule}`);
  }
  assert.ok(countAfter(output, 'worker SIGKILLs (then restarted)') > 0, tail);
  assert.equal(countAfter(output, 'dev server restarts'), 1, tail);
  assert.ok(countAfter(output, 'pg_terminate_backend rounds / connections cut') > 0, tail);
  assert.ok(countAfter(output, 'service answers 503 (injected faults, dependencies down)') > 0, tail);
  assert.equal(countAfter(output, 'fault schedule entries that failed'), 0, tail);
  // How many webhooks were duplicated or dropped, voids and refunds refused, depends on how much the
  // runs got done while the faults were on, which a busy machine slows down: reported, not asserted.
});
