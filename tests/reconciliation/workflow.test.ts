// The reconciliation workflow and its operator workflow against in-memory activities on the
// time-skipping test server: what is settled unattended, what waits for the `resolve` signal,
// and that a second run over the same facts starts nothing and refunds nothing again.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { ReconciliationActivities } from '../../activities/reconciliation.ts';
import { refundChildActivities, type RefundChildActivities } from '../../activities/refund-child.ts';
import {
  mismatchStateQuery,
  mismatchWorkflowId,
  reconciliationProgressQuery,
  resolveMismatchSignal,
  type MismatchStatus,
} from '../../shared/reconciliation.ts';
import { FlowStatusKey, NeedsAttentionKey, OrderIdKey } from '../../shared/search-attributes.ts';
import { refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { reconciliationRefundRequestId } from '../../workflows/mismatch-resolution.ts';
import type { ReconciliationReport } from '../../workflows/reconciliation.ts';
import type { ReferenceFacts } from '../../workflows/reconciliation-rules.ts';
import { refundState, startTestServer, WORKFLOWS_WITH_FAKE_REFUND_PATH } from '../support/checkout-harness.ts';
import type { FakeRefundActivities } from '../fixtures/workflows/fake-refund.ts';
import { readHistoryFile, writeHistoryFile } from '../support/histories.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';

// Histories of finished runs, replayed against the current code so that an unversioned change
// to either workflow fails here. Re-record after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/reconciliation/workflow.test.ts
const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/reconciliation-histories/', import.meta.url));

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') });
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

/** Our reconciliation tables, the stand-in Refund workflow and the provider's refunds, in memory. */
function fakeRecords(facts: ReferenceFacts[]) {
  const rows = new Map<string, { runId: string; status: MismatchStatus; action?: string; by?: string; details: Record<string, unknown> }>();
  /** What each Refund workflow was asked for, in order. */
  const refunds: RefundInput[] = [];
  /** Refunds made straight at the provider (money no payment of ours stands for). */
  const providerRefunds: { idempotencyKey: string; pspPaymentId: string; amountMinor: number; reference: string }[] = [];
  const refundChecks = new Map<string, number>();
  const activities: ReconciliationActivities & RefundChildActivities & FakeRefundActivities = {
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
    // the facts stand still: what was held is still "held", so asking again must be stopped by the refund's id
    readRefundTarget: async ({ reference, pspPaymentId }) => {
      const fact = facts.find((f) => f.reference === reference)!;
      const at = fact.providerPayments.find((p) => p.id === pspPaymentId)!;
      return { heldMinor: at.capturedMinor - at.refundedMinor, currency: at.currency, ours: fact.payment?.pspPaymentId === pspPaymentId };
    },
    startProviderRefund: async (request) => {
      if (!providerRefunds.some((r) => r.idempotencyKey === request.idempotencyKey)) providerRefunds.push(request);
      return { refundId: `re_${request.idempotencyKey}`, status: 'PENDING', amountMinor: request.amountMinor, failureReason: null };
    },
    readProviderRefund: async ({ refundId }) => {
      const checks = (refundChecks.get(refundId) ?? 0) + 1;
      refundChecks.set(refundId, checks);
      return { refundId, status: checks < 2 ? 'PENDING' : 'SUCCEEDED', amountMinor: 0, failureReason: null };
    },
    readRefundWorkflow: refundChildActivities().readRefundWorkflow,
    fakeRefund: async (input) => {
      refunds.push(input);
      return refundState(input, input.amount === 'full' ? 1000 : input.amount, 'SUCCEEDED');
    },
  };
  return { activities, rows, refunds, providerRefunds };
}

/**
 * A workflow's result, waited for without letting the test server skip time: with operator
 * workflows idle, the next thing it would skip to is their (default, ten-year) execution timeout.
 */
// Waits in real time and reads the result through a plain client: the time-skipping client's
// result() lets the server skip ahead, straight to the 10-year run timeout of the operator
// workflows that are still (rightly) waiting for a signal.
async function finished<T>(handle: { workflowId: string; describe(): Promise<{ status: { name: string } }>; result(): Promise<T> }): Promise<T> {
  while ((await handle.describe()).status.name === 'RUNNING') await new Promise((r) => setTimeout(r, 50));
  const plain = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', dataConverter: testDataConverter() });
  return plain.workflow.getHandle(handle.workflowId).result() as Promise<T>;
}

let run = 0;
async function withWorker<T>(activities: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `reconciliation-test-${process.pid}-${++run}`;
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle, activities });
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
    const reconcile = async (n: number) =>
      finished(await env.client.workflow.start<() => Promise<ReconciliationReport>>('reconciliation', {
        taskQueue, workflowId: `reconciliation-w-${n}`, args: [PERIOD] as never,
      }));
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
    const firstRun = env.client.workflow.getHandle('reconciliation-w-1');
    assert.deepEqual(
      await firstRun.query(reconciliationProgressQuery),
      { step: 'FINISHED', periodStart: PERIOD.periodStart, periodEnd: PERIOD.periodEnd, examined: 4, detected: 3, settled: 3 },
    );
    assert.equal((await firstRun.describe()).typedSearchAttributes.get(FlowStatusKey), 'FINISHED');
    const cancelledRefund = reconciliationRefundRequestId('status-mismatch:order-w-cancelled:psp_w-cancelled');
    assert.equal(cancelledRefund, 'reconciliation-status-mismatch.order-w-cancelled.psp_w-cancelled');
    assert.deepEqual(refunds, [{
      requestId: cancelledRefund,
      orderId: 'order-w-cancelled',
      amount: 1000,
      reason: 'reconciliation: captured 1000 still held for cancelled order order-w-cancelled',
      restock: [],
      requestedBy: 'reconciliation',
      preApproved: { by: 'reconciliation', reason: 'captured 1000 still held for cancelled order order-w-cancelled' },
    }]);
    const child = await env.client.workflow.getHandle(refundWorkflowId(cancelledRefund)).describe();
    assert.equal(child.parentExecution?.workflowId, 'reconciliation-w-1', 'the refund is the run\'s child');
    assert.match(String(rows.get('status-mismatch:order-w-closed:psp_w-closed')!.details.needsOperator), /not running/);

    const second = await reconcile(2);
    assert.equal(second.newMismatches, 0);
    assert.equal(second.alreadyKnown, 3);
    assert.equal(refunds.length, 1, 'no second refund');

    // the operator decides; the waiting workflow carries it out and closes the record
    const amount = env.client.workflow.getHandle(mismatchWorkflowId('amount-mismatch:order-w-amount:psp_w-amount'));
    assert.equal((await amount.query(mismatchStateQuery)).status, 'OPEN');
    const open = await amount.describe();
    assert.match((await open.staticSummary()) ?? '', /^Mismatch amount-mismatch:order-w-amount:psp_w-amount · AMOUNT_MISMATCH · /);
    assert.equal(open.typedSearchAttributes.get(NeedsAttentionKey), true, 'an open mismatch waits for a person');
    assert.equal(open.typedSearchAttributes.get(FlowStatusKey), 'OPEN');
    assert.equal(open.typedSearchAttributes.get(OrderIdKey), 'order-w-amount');
    await amount.signal(resolveMismatchSignal, { action: 'refund', by: 'alice', note: 'customer asked for the difference back' });
    const result = await finished(amount);
    assert.equal(result.status, 'RESOLVED');
    const resolved = (await amount.describe()).typedSearchAttributes;
    assert.equal(resolved.get(FlowStatusKey), 'RESOLVED');
    assert.equal(resolved.get(NeedsAttentionKey), false);
    assert.equal(rows.get('amount-mismatch:order-w-amount:psp_w-amount')!.status, 'RESOLVED');
    assert.deepEqual(refunds.map((r) => [r.requestId, r.amount, r.preApproved]), [
      [cancelledRefund, 1000, { by: 'reconciliation', reason: 'captured 1000 still held for cancelled order order-w-cancelled' }],
      [reconciliationRefundRequestId('amount-mismatch:order-w-amount:psp_w-amount'), 900, { by: 'alice', reason: 'customer asked for the difference back' }],
    ], 'the operator\'s refund gives back what the provider holds, approved by the operator');

    // `complete-order` on a closed checkout cannot be done: the record stays OPEN and says why
    const closed = env.client.workflow.getHandle(mismatchWorkflowId('status-mismatch:order-w-closed:psp_w-closed'));
    await closed.signal(resolveMismatchSignal, { action: 'complete-order', by: 'bob', note: 'try again' });
    const closedRow = rows.get('status-mismatch:order-w-closed:psp_w-closed')!;
    for (let i = 0; i < 100 && !closedRow.details.lastAttempt; i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(String(closedRow.details.lastAttempt), /complete-order by bob failed: .*not running/);
    assert.equal((await closed.query(mismatchStateQuery)).status, 'OPEN');
    assert.equal((await closed.describe()).typedSearchAttributes.get(NeedsAttentionKey), true, 'back to waiting for a decision');
    await closed.signal(resolveMismatchSignal, { action: 'accept', by: 'bob', note: 'completed by hand in the back office' });
    assert.equal((await finished(closed)).status, 'RESOLVED');
    assert.equal(closedRow.status, 'RESOLVED');

    if (process.env.RECORD_HISTORIES === '1') {
      await writeHistoryFile(`${HISTORIES_DIR}reconciliation-run.json`, await env.client.workflow.getHandle('reconciliation-w-1').fetchHistory());
      await writeHistoryFile(`${HISTORIES_DIR}mismatch-resolution.json`, await closed.fetchHistory());
    }
  });
});

test('a refund already made for a mismatch is reported, not made again; one that gave nothing back leaves it to an operator', async () => {
  const { activities, rows, refunds } = fakeRecords([captured('w-done', 'CANCELLED'), captured('w-abandoned', 'CANCELLED')]);
  const done = 'status-mismatch:order-w-done:psp_w-done';
  const abandoned = 'status-mismatch:order-w-abandoned:psp_w-abandoned';
  const fakeRefund = activities.fakeRefund;
  activities.fakeRefund = async (input) =>
    input.requestId === reconciliationRefundRequestId(abandoned)
      ? refundState(input, 1000, 'ABANDONED', 'abandoned by ops: paid back by bank transfer')
      : fakeRefund(input);
  await withWorker(activities, async (taskQueue) => {
    // both refunds were made before this run (say, by a run that failed before recording them)
    for (const id of [done, abandoned]) {
      const requestId = reconciliationRefundRequestId(id);
      await env.client.workflow.execute('refund', {
        taskQueue, workflowId: refundWorkflowId(requestId),
        args: [{ requestId, orderId: id.split(':')[1]!, amount: 1000, reason: 'earlier', restock: [], requestedBy: 'reconciliation' } satisfies RefundInput],
      });
    }
    assert.equal(refunds.length, 1);
    const report = await env.client.workflow.execute<() => Promise<ReconciliationReport>>('reconciliation', {
      taskQueue, workflowId: 'reconciliation-w-reported', args: [PERIOD] as never,
    });
    assert.deepEqual(Object.fromEntries(report.mismatches.map((m) => [m.id, m.outcome])), { [done]: 'AUTO_RESOLVED', [abandoned]: 'FLAGGED' });
    assert.equal(refunds.length, 1, 'no refund made again');
    assert.match(String(rows.get(abandoned)!.details.needsOperator), /refund refund-reconciliation-\S+ \(started earlier\) ended ABANDONED: abandoned by ops/);
  });
});

test('money no payment of ours stands for is refunded straight at the provider, once the operator says so', async () => {
  const ghost = captured('w-ghost', 'CANCELLED');
  ghost.payment = null;
  ghost.order = null;
  const { activities, providerRefunds, refunds } = fakeRecords([ghost]);
  const id = 'missing-ours:order-w-ghost:psp_w-ghost';
  await withWorker(activities, async (taskQueue) => {
    const report = await env.client.workflow.execute<() => Promise<ReconciliationReport>>('reconciliation', {
      taskQueue, workflowId: 'reconciliation-w-ghost', args: [PERIOD] as never,
    });
    assert.deepEqual(report.mismatches.map((m) => [m.id, m.outcome]), [[id, 'FLAGGED']]);
    const resolution = env.client.workflow.getHandle(mismatchWorkflowId(id));
    await resolution.signal(resolveMismatchSignal, { action: 'refund', by: 'bob', note: 'not ours' });
    assert.equal((await resolution.result()).status, 'RESOLVED');
  });
  assert.deepEqual(providerRefunds, [{
    idempotencyKey: `reconciliation:${id}:refund:bob-1`,
    pspPaymentId: 'psp_w-ghost',
    amountMinor: 1000,
    reference: refundWorkflowId(reconciliationRefundRequestId(id)),
  }]);
  assert.equal(refunds.length, 0, 'no Refund workflow: there is no payment of ours to refund through');
});

test('recorded reconciliation and mismatch-resolution histories replay on the current code', async () => {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, ['mismatch-resolution.json', 'reconciliation-run.json']);
  for (const file of files) {
    // the test ring reads histories recorded under it; the older, unencrypted ones pass through
    await Worker.runReplayHistory({ workflowBundle, dataConverter: testDataConverter() }, await readHistoryFile(HISTORIES_DIR + file), file);
  }
});
