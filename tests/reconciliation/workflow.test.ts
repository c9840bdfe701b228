// The reconciliation workflow and its operator workflow against in-memory activities on the
// time-skipping test server: what is settled unattended, what waits for the `resolve` signal,
// and that a second run over the same facts starts nothing and refunds nothing again.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { ReconciliationActivities } from '../../activities/reconciliation.ts';
import { mismatchStateQuery, mismatchWorkflowId, resolveMismatchSignal, type MismatchStatus } from '../../shared/reconciliation.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import type { ReconciliationReport } from '../../workflows/reconciliation.ts';
import type { ReferenceFacts } from '../../workflows/reconciliation-rules.ts';
import { startTestServer } from '../support/checkout-harness.ts';
import { readHistoryFile, writeHistoryFile } from '../support/histories.ts';

// Histories of finished runs, replayed against the current code so that an unversioned change
// to either workflow fails here. Re-record after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/reconciliation/workflow.test.ts
const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/reconciliation-histories/', import.meta.url));

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
});
after(async () => {
  await env?.teardown();
});

const OLD = '2026-11-29T08:00:00.000Z';
const PERIOD = { periodStart: '2026-11-29T00:00:00.000Z', periodEnd: '2026-11-29T12:00:00.000Z', boundaryGraceMs: 60_000 };

function captured(key: string, orderStatus: 'AWAITING_PAYMENT' | 'PAID' | 'CANCELLED', capturedMinor = 1000): ReferenceFacts {
  const reference = `order-${key}`;
  return {
    reference,
    settlement: [{ id: `txn_${key}`, paymentId: `psp_${key}`, reference, type: 'CAPTURE', amountMinor: capturedMinor, currency: 'EUR', createdAt: OLD }],
    providerPayments: [{ id: `psp_${key}`, reference, status: 'CAPTURED', amountMinor: 1000, capturedMinor, refundedMinor: 0, currency: 'EUR' }],
    payment: { paymentId: `pay_${key}`, orderId: reference, status: 'CAPTURED', amountMinor: 1000, capturedMinor: 1000, refundedMinor: 0, currency: 'EUR', pspPaymentId: `psp_${key}`, updatedAt: OLD },
    order: { id: reference, status: orderStatus, totalMinor: 1000, currency: 'EUR', updatedAt: OLD },
  };
}

/** Our reconciliation tables and the provider's refunds, in memory. */
function fakeRecords(facts: ReferenceFacts[]) {
  const rows = new Map<string, { runId: string; status: MismatchStatus; action?: string; by?: string; details: Record<string, unknown> }>();
  const refunds: string[] = [];
  const activities: ReconciliationActivities = {
    collectReconciliationFacts: async () => facts,
    recordRunStarted: async () => {},
    recordMismatches: async ({ runId, mismatches }) =>
      mismatches.map((m) => {
        if (!rows.has(m.id)) rows.set(m.id, { runId, status: 'OPEN', details: { summary: m.summary } });
        const row = rows.get(m.id)!;
        return { id: m.id, status: row.status, isNew: row.runId === runId };
      }),
    recordRunFinished: async () => {},
    markMismatch: async ({ id, status, action, by }) => {
      const row = rows.get(id)!;
      if (row.status === 'OPEN') Object.assign(row, { status, action, by });
    },
    noteMismatch: async ({ id, details }) => {
      Object.assign(rows.get(id)!.details, details);
    },
    getOrderStatus: async () => 'AWAITING_PAYMENT',
    refundHeld: async ({ mismatchId }) => {
      refunds.push(mismatchId);
      return { refundedMinor: 1000, heldMinor: 0 };
    },
  };
  return { activities, rows, refunds };
}

let run = 0;
async function withWorker<T>(activities: ReconciliationActivities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `reconciliation-test-${process.pid}-${++run}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities });
  return worker.runUntil(fn(taskQueue));
}

test('a cancelled order\'s capture is refunded; the amount difference and the closed checkout wait for an operator; a second run changes nothing', async () => {
  const { activities, rows, refunds } = fakeRecords([
    captured('w-cancelled', 'CANCELLED'),
    captured('w-amount', 'PAID', 900),
    captured('w-closed', 'AWAITING_PAYMENT'),
    captured('w-fine', 'PAID'),
  ]);
  await withWorker(activities, async (taskQueue) => {
    const reconcile = (n: number) =>
      env.client.workflow.execute<() => Promise<ReconciliationReport>>('reconciliation', {
        taskQueue, workflowId: `reconciliation-w-${n}`, args: [PERIOD] as never,
      });
    const first = await reconcile(1);
    assert.deepEqual(
      Object.fromEntries(first.mismatches.map((m) => [m.id, m.outcome])),
      {
        'status-mismatch:order-w-cancelled:psp_w-cancelled': 'AUTO_RESOLVED',
        'amount-mismatch:order-w-amount:psp_w-amount': 'FLAGGED',
        'status-mismatch:order-w-closed:psp_w-closed': 'FLAGGED',
      },
    );
    assert.equal(first.examined, 4);
    assert.deepEqual(refunds, ['status-mismatch:order-w-cancelled:psp_w-cancelled']);
    assert.match(String(rows.get('status-mismatch:order-w-closed:psp_w-closed')!.details.needsOperator), /not running/);

    const second = await reconcile(2);
    assert.equal(second.newMismatches, 0);
    assert.equal(second.alreadyKnown, 3);
    assert.equal(refunds.length, 1, 'no second refund');

    // the operator decides; the waiting workflow carries it out and closes the record
    const amount = env.client.workflow.getHandle(mismatchWorkflowId('amount-mismatch:order-w-amount:psp_w-amount'));
    assert.equal((await amount.query(mismatchStateQuery)).status, 'OPEN');
    await amount.signal(resolveMismatchSignal, { action: 'refund', by: 'alice', note: 'customer asked for the difference back' });
    const result = await amount.result();
    assert.equal(result.status, 'RESOLVED');
    assert.equal(rows.get('amount-mismatch:order-w-amount:psp_w-amount')!.status, 'RESOLVED');
    assert.deepEqual(refunds, ['status-mismatch:order-w-cancelled:psp_w-cancelled', 'amount-mismatch:order-w-amount:psp_w-amount']);

    // `complete-order` on a closed checkout cannot be done: the record stays OPEN and says why
    const closed = env.client.workflow.getHandle(mismatchWorkflowId('status-mismatch:order-w-closed:psp_w-closed'));
    await closed.signal(resolveMismatchSignal, { action: 'complete-order', by: 'bob', note: 'try again' });
    const closedRow = rows.get('status-mismatch:order-w-closed:psp_w-closed')!;
    for (let i = 0; i < 100 && !closedRow.details.lastAttempt; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(String(closedRow.details.lastAttempt), /complete-order by bob failed: .*not running/);
    assert.equal((await closed.query(mismatchStateQuery)).status, 'OPEN');
    await closed.signal(resolveMismatchSignal, { action: 'accept', by: 'bob', note: 'completed by hand in the back office' });
    assert.equal((await closed.result()).status, 'RESOLVED');
    assert.equal(closedRow.status, 'RESOLVED');

    if (process.env.RECORD_HISTORIES === '1') {
      await writeHistoryFile(`${HISTORIES_DIR}reconciliation-run.json`, await env.client.workflow.getHandle('reconciliation-w-1').fetchHistory());
      await writeHistoryFile(`${HISTORIES_DIR}mismatch-resolution.json`, await closed.fetchHistory());
    }
  });
});

test('recorded reconciliation and mismatch-resolution histories replay on the current code', async () => {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, ['mismatch-resolution.json', 'reconciliation-run.json']);
  for (const file of files) {
    await Worker.runReplayHistory({ workflowBundle }, await readHistoryFile(HISTORIES_DIR + file), file);
  }
});
