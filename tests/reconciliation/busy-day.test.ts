// A busy day on real parts (Temporal dev server, PostgreSQL, the services, the worker and the
// API): 10,000 captured payments written straight into the services' tables, with a handful of
// differences among them. Reconciliation pages through them, finds exactly the seeded
// differences, continues as new as its history grows, keeps every payload and every run's
// history under the bounds below (read from Temporal's own histories), reports the whole day
// through the API, and a second run changes nothing.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { Db } from '../../lib/db.ts';
import { CHECKOUT_TASK_QUEUE } from '../../shared/task-queues.ts';
import type { ReconciliationOptions, ReconciliationReport } from '../../workflows/reconciliation.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { runChain } from './run-chain.ts';

/** The most any one event of a run's history may carry (a workflow input, an activity's result…). */
const PAYLOAD_BOUND_BYTES = 256 * 1024;
/** The most events one run's history may hold. */
const HISTORY_BOUND_EVENTS = 2_000;

const PAYMENTS = 10_000;
const T0 = new Date();
const AT = new Date(T0.getTime() - 30 * 60_000);
const PERIOD: ReconciliationOptions = { periodStart: new Date(T0.getTime() - 2 * 60 * 60_000).toISOString(), periodEnd: T0.toISOString(), boundaryGraceMs: 60_000 };

const ref = (i: number) => `order-bd-${String(i).padStart(5, '0')}`;
const psp = (i: number) => `psp_bd_${String(i).padStart(5, '0')}`;

/** The differences seeded among the 10,000, and what a run does with each. */
const SEEDED = {
  [`amount-mismatch:${ref(1234)}:${psp(1234)}`]: 'FLAGGED',
  [`status-mismatch:${ref(5678)}:${psp(5678)}`]: 'AUTO_RESOLVED',
  [`missing-at-provider:${ref(7777)}:${psp(7777)}`]: 'FLAGGED',
  [`status-mismatch:${ref(9001)}:${psp(9001)}`]: 'FLAGGED',
  'missing-ours:order-bd-ghost-1:psp_bd_ghost_1': 'FLAGGED',
  'missing-ours:order-bd-ghost-2:psp_bd_ghost_2': 'FLAGGED',
};

let stack: TestStack;
let db: Db;

/** Every order paid, its payment captured here and at the provider; then the differences. */
async function seedDay(): Promise<void> {
  const series = `generate_series(0, ${PAYMENTS - 1}) AS i`;
  const key = `lpad(i::text, 5, '0')`;
  const amount = '1000 + i % 50';
  await db.$executeRawUnsafe(
    `INSERT INTO orders_orders (id, checkout_id, customer_id, currency, subtotal_minor, total_minor, status, created_at, updated_at)
     SELECT 'order-bd-' || ${key}, 'checkout-bd-' || ${key}, 'cust-bd', 'EUR', ${amount}, ${amount}, 'PAID', $1, $1 FROM ${series}`,
    AT,
  );
  await db.$executeRawUnsafe(
    `INSERT INTO payments_payments (id, order_id, amount_minor, currency, status, psp_payment_id, captured_minor, created_at, updated_at)
     SELECT 'pay_order-bd-' || ${key}, 'order-bd-' || ${key}, ${amount}, 'EUR', 'CAPTURED', 'psp_bd_' || ${key}, ${amount}, $1, $1 FROM ${series}`,
    AT,
  );
  await db.$executeRawUnsafe(
    `INSERT INTO psp_payments (id, merchant_reference, amount_minor, currency, card_last4, status, captured_minor, created_at, updated_at)
     SELECT 'psp_bd_' || ${key}, 'order-bd-' || ${key}, ${amount}, 'EUR', '4242', 'CAPTURED', ${amount}, $1, $1 FROM ${series}`,
    AT,
  );
  await db.$executeRawUnsafe(
    `INSERT INTO psp_transactions (id, payment_id, type, amount_minor, created_at)
     SELECT 'txn_bd_' || ${key} || '_' || lower(t::text), 'psp_bd_' || ${key}, t, ${amount}, $1
       FROM ${series} CROSS JOIN unnest(ARRAY['AUTHORIZATION', 'CAPTURE']::"PspTransactionType"[]) AS t`,
    AT,
  );
  // the provider captured 100 less than the order's total
  await db.$executeRaw`UPDATE psp_payments SET captured_minor = captured_minor - 100 WHERE id = ${psp(1234)}`;
  await db.$executeRaw`UPDATE psp_transactions SET amount_minor = amount_minor - 100 WHERE id = ${`txn_bd_01234_capture`}`;
  // captured for an order that was cancelled: refunded unattended
  await db.$executeRaw`UPDATE orders_orders SET status = 'CANCELLED' WHERE id = ${ref(5678)}`;
  // we record a capture the provider has never heard of
  await db.$executeRaw`DELETE FROM psp_transactions WHERE payment_id = ${psp(7777)}`;
  await db.$executeRaw`DELETE FROM psp_payments WHERE id = ${psp(7777)}`;
  // captured, but the order still awaits payment and no checkout is left to complete it
  await db.$executeRaw`UPDATE orders_orders SET status = 'AWAITING_PAYMENT' WHERE id = ${ref(9001)}`;
  await db.$executeRaw`UPDATE payments_payments SET status = 'CAPTURE_PENDING', captured_minor = 0 WHERE order_id = ${ref(9001)}`;
  // money at the provider for references we have no order or payment for
  for (const n of [1, 2]) {
    await db.$executeRaw`INSERT INTO psp_payments (id, merchant_reference, amount_minor, currency, card_last4, status, captured_minor, created_at, updated_at)
      VALUES (${`psp_bd_ghost_${n}`}, ${`order-bd-ghost-${n}`}, 1800, 'EUR', '4242', 'CAPTURED', 1800, ${AT}, ${AT})`;
    await db.$executeRaw`INSERT INTO psp_transactions (id, payment_id, type, amount_minor, created_at)
      VALUES (${`txn_bd_ghost_${n}`}, ${`psp_bd_ghost_${n}`}, 'CAPTURE', 1800, ${AT})`;
  }
}

/** A digest of everything a run could change: our report, the money at the provider, our payments and orders. */
async function digest() {
  const [row] = await db.$queryRaw<Record<string, string>[]>`
    SELECT
      (SELECT md5(string_agg(id || ':' || status || ':' || run_id || ':' || details::text, ',' ORDER BY id)) FROM reconciliation_mismatches) AS mismatches,
      (SELECT md5(string_agg(id || ':' || type || ':' || amount_minor, ',' ORDER BY id)) FROM psp_transactions) AS movements,
      (SELECT md5(string_agg(id || ':' || status || ':' || captured_minor || ':' || refunded_minor, ',' ORDER BY id)) FROM psp_payments) AS provider,
      (SELECT md5(string_agg(id || ':' || status || ':' || captured_minor || ':' || refunded_minor, ',' ORDER BY id)) FROM payments_payments) AS payments,
      (SELECT md5(string_agg(id || ':' || status, ',' ORDER BY id)) FROM orders_orders) AS orders`;
  return row;
}

let runs = 0;
/** Runs a reconciliation to its end; answers its report and every run of its chain. */
async function reconcile(options: ReconciliationOptions) {
  const workflowId = `reconciliation-busy-day-${process.pid}-${++runs}`;
  const handle = await stack.client.workflow.start('reconciliation', {
    taskQueue: CHECKOUT_TASK_QUEUE,
    workflowId,
    args: [{ completionWaitMs: 20_000, ...PERIOD, ...options }],
  });
  const report: ReconciliationReport = await handle.result();
  return { report, firstRunId: handle.firstExecutionRunId, chain: await runChain(stack.client, workflowId, handle.firstExecutionRunId) };
}

async function latestRun() {
  const res = await fetch(`${stack.apiUrl}/reconciliation/runs/latest`, {
    headers: { authorization: `Bearer ${await stack.tokenFor('operations', 'olu@ops')}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, any>;
}

/** Every run short, every payload small: what the paging and continue-as-new are for. */
function assertBounded(chain: Awaited<ReturnType<typeof reconcile>>['chain'], t: TestContext): void {
  t.diagnostic(`${chain.length} runs: ${chain.map((run) => `${run.events} events, largest payload ${run.largestPayloadBytes} B (${run.largestPayloadIn})`).join('; ')}`);
  for (const run of chain) {
    assert.ok(run.events < HISTORY_BOUND_EVENTS, `run ${run.runId}: ${run.events} events`);
    assert.ok(run.largestPayloadBytes < PAYLOAD_BOUND_BYTES, `run ${run.runId}: ${run.largestPayloadBytes} bytes in ${run.largestPayloadIn}`);
  }
}

before(async () => {
  stack = await startTestStack();
  db = stack.database.db;
  await stack.startWorker();
  await seedDay();
});
after(() => stack.stop());

test('a day of 10,000 payments is reconciled a page at a time: exactly the seeded differences, every run and payload bounded', async (t) => {
  // a low limit, so this day continues as new (under the default, 800 events, it fits in one run)
  const { report, firstRunId, chain } = await reconcile({ continueAfterEvents: 100 });
  assert.deepEqual(Object.fromEntries(report.mismatches.map((m) => [m.id, m.outcome])), SEEDED);
  const { examined, deferred, detected, newMismatches, alreadyKnown, autoResolved, flagged } = report;
  assert.deepEqual(
    { examined, deferred, detected, newMismatches, alreadyKnown, autoResolved, flagged },
    { examined: PAYMENTS + 2, deferred: 0, detected: 6, newMismatches: 6, alreadyKnown: 0, autoResolved: 1, flagged: 5 },
  );
  assert.ok(chain.length >= 2, `continued as new: ${chain.length} runs`);
  assert.equal(report.runs, chain.length);
  assertBounded(chain, t);

  const rows = await db.reconciliationMismatch.findMany({ orderBy: { id: 'asc' } });
  assert.deepEqual(rows.map((r) => r.id), Object.keys(SEEDED).sort());
  assert.ok(rows.every((r) => r.runId === firstRunId), 'every mismatch belongs to the one report, whichever run found it');
  // the cancelled order's capture was given back, once
  assert.equal(await db.pspTransaction.count({ where: { paymentId: psp(5678), type: 'REFUND' } }), 1);

  // the API reports the whole day, not the last run's share of it
  const latest = await latestRun();
  assert.equal(latest.id, firstRunId);
  assert.ok(latest.finishedAt);
  assert.deepEqual(
    [latest.examined, latest.detected, latest.newMismatches, latest.autoResolved, latest.flagged],
    [PAYMENTS + 2, 6, 6, 1, 5],
  );
  assert.equal(latest.report.runs, chain.length);
  assert.equal(latest.report.mismatches.length, 6);
});

test('a second run over the busy day changes nothing', async (t) => {
  const before = await digest();
  const { report, chain } = await reconcile({});
  assert.equal(report.examined, PAYMENTS + 2);
  assert.equal(report.newMismatches, 0);
  assert.equal(report.autoResolved, 0);
  assert.equal(report.flagged, 0);
  // the refunded capture now agrees; the rest are known and still with an operator
  assert.deepEqual(
    Object.fromEntries(report.mismatches.map((m) => [m.id, m.outcome])),
    Object.fromEntries(Object.keys(SEEDED).filter((id) => SEEDED[id] === 'FLAGGED').map((id) => [id, 'ALREADY_KNOWN'])),
  );
  assertBounded(chain, t);
  assert.deepEqual(await digest(), before);
  assert.equal((await latestRun()).newMismatches, 0);
});
