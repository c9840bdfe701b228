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
import { MAX_PAGE_MISMATCHES, type ReconciliationActivities } from '../../activities/reconciliation.ts';
import { refundChildActivities, type RefundChildActivities } from '../../activities/refund-child.ts';
import {
  mismatchStateQuery,
  mismatchWorkflowId,
  reconciliationProgressQuery,
  reconciliationStartAttributes,
  resolveMismatchSignal,
  type MismatchStatus,
} from '../../shared/reconciliation.ts';
import { FlowStatusKey, NeedsAttentionKey, OrderIdKey } from '../../shared/search-attributes.ts';
import { refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { reconciliationRefundRequestId } from '../../workflows/mismatch-resolution.ts';
import type { ReconciliationOptions, ReconciliationReport } from '../../workflows/reconciliation.ts';
import { classifyPage, type ReferenceFacts } from '../../workflows/reconciliation-rules.ts';
import { refundState, startTestServer, WORKFLOWS_WITH_FAKE_REFUND_PATH } from '../support/checkout-harness.ts';
import type { FakeRefundActivities } from '../fixtures/workflows/fake-refund.ts';
import { readHistoryFile, recordedName, recordEachWay, withRecordingWorker, writeHistoryFile, type PatchMode } from '../support/histories.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';
import { runChain } from './run-chain.ts';

// Histories of finished runs, replayed against the current code so that an unversioned change
// to either workflow fails here. Re-record after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/reconciliation/workflow.test.ts
// It records each history as the code runs now (`…-encrypted`) and, where the run meets a
// patch, as a run from before the patches (`…-before-patches-encrypted`); the two histories from
// before any patch (`reconciliation-run.json`, `mismatch-resolution.json`) are never written over.
const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/reconciliation-histories/', import.meta.url));
/** Recorded before any patch and before encryption: they replay the oldest branch of every patch. */
const FROM_BEFORE_PATCHES = ['mismatch-resolution.json', 'reconciliation-run.json'];
/** What the recorder writes (each also `-before-patches-encrypted` when its run met a patch). */
const RECORDED = ['reconciliation-run', 'mismatch-resolution', 'mismatch-resolution-provider-refund'];

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
    // pages in reference order, as the services answer them
    collectReconciliationPage: async ({ period, after, limit = 500 }) => {
      const rest = facts.filter((f) => after === null || f.reference > after).sort((a, b) => (a.reference < b.reference ? -1 : 1));
      const page = rest.slice(0, limit);
      return classifyPage(page, period, rest.length > limit ? page.at(-1)!.reference : null, MAX_PAGE_MISMATCHES);
    },
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

  });
});

test('a long day is read a page at a time; the run continues as new as its history grows and reports every reference', async () => {
  // 60 references in pages of 4: a few differences among many that agree
  const facts = Array.from({ length: 56 }, (_, i) => captured(`w-day-${String(i).padStart(2, '0')}`, 'PAID'));
  facts.push(captured('w-day-10-amount', 'PAID', 900), captured('w-day-25-amount', 'PAID', 800), captured('w-day-40-closed', 'AWAITING_PAYMENT'), captured('w-day-50-cancelled', 'CANCELLED'));
  const { activities, rows, refunds } = fakeRecords(facts);
  const options: ReconciliationOptions = { ...PERIOD, pageSize: 4, continueAfterEvents: 40 };
  await withWorker(activities, async (taskQueue) => {
    const day = async (workflowId: string) => {
      const handle = await env.client.workflow.start<(o: ReconciliationOptions) => Promise<ReconciliationReport>>('reconciliation', {
        taskQueue, workflowId, args: [options], typedSearchAttributes: reconciliationStartAttributes(),
      });
      return { report: await finished(handle), runs: await runChain(env.client, workflowId, handle.firstExecutionRunId) };
    };
    const first = await day('reconciliation-w-day-1');
    assert.deepEqual(
      Object.fromEntries(first.report.mismatches.map((m) => [m.id, m.outcome])),
      {
        'amount-mismatch:order-w-day-10-amount:psp_w-day-10-amount': 'FLAGGED',
        'amount-mismatch:order-w-day-25-amount:psp_w-day-25-amount': 'FLAGGED',
        'status-mismatch:order-w-day-40-closed:psp_w-day-40-closed': 'FLAGGED',
        'status-mismatch:order-w-day-50-cancelled:psp_w-day-50-cancelled': 'AUTO_RESOLVED',
      },
    );
    const { examined, deferred, detected, newMismatches, alreadyKnown, autoResolved, flagged } = first.report;
    assert.deepEqual({ examined, deferred, detected, newMismatches, alreadyKnown, autoResolved, flagged }, {
      examined: 60, deferred: 0, detected: 4, newMismatches: 4, alreadyKnown: 0, autoResolved: 1, flagged: 3,
    });
    assert.deepEqual(first.report.omitted, { mismatches: 0, deferredReferences: 0 });
    // the chain continued as new, each run short, and the report says how many runs it took
    assert.ok(first.runs.length >= 3, `${first.runs.length} runs`);
    assert.equal(first.report.runs, first.runs.length);
    // each run carries the search attributes on: RUNNING until the last says FINISHED
    const flowStatus = async (runId?: string) => (await env.client.workflow.getHandle('reconciliation-w-day-1', runId).describe()).typedSearchAttributes.get(FlowStatusKey);
    assert.equal(await flowStatus(first.runs[1]!.runId), 'RUNNING');
    assert.equal(await flowStatus(), 'FINISHED');
    // 40 events, then at most the page under way and its turn of settling (here a refund and a nudged checkout)
    for (const run of first.runs) assert.ok(run.events < 100, `run ${run.runId} has ${run.events} events`);
    assert.deepEqual(
      await env.client.workflow.getHandle('reconciliation-w-day-1').query(reconciliationProgressQuery),
      { step: 'FINISHED', periodStart: PERIOD.periodStart, periodEnd: PERIOD.periodEnd, examined: 60, detected: 4, settled: 4 },
    );
    // the refund is the reconciliation's child whichever of its runs started it
    const refund = await env.client.workflow.getHandle(refundWorkflowId(reconciliationRefundRequestId('status-mismatch:order-w-day-50-cancelled:psp_w-day-50-cancelled'))).describe();
    assert.equal(refund.parentExecution?.workflowId, 'reconciliation-w-day-1');
    assert.equal(refunds.length, 1);
    assert.equal(rows.size, 4);

    const second = await day('reconciliation-w-day-2');
    assert.equal(second.report.examined, 60);
    assert.equal(second.report.newMismatches, 0);
    assert.equal(second.report.alreadyKnown, 4);
    assert.equal(refunds.length, 1, 'no second refund');
  });
});

test('mismatches still to settle when the history is full go to the next run, and each is handed to an operator once', async () => {
  // 60 differences on one page: 50 are settled at once, the rest wait for the next run
  const facts = Array.from({ length: 60 }, (_, i) => captured(`w-many-${String(i).padStart(2, '0')}`, 'PAID', 900));
  const { activities, rows } = fakeRecords(facts);
  const recordings = new Map<string, number>();
  const recordMismatches = activities.recordMismatches;
  activities.recordMismatches = async (input) => {
    for (const m of input.mismatches) recordings.set(m.id, (recordings.get(m.id) ?? 0) + 1);
    return recordMismatches(input);
  };
  let pageReads = 0;
  const collectPage = activities.collectReconciliationPage;
  activities.collectReconciliationPage = async (input) => {
    pageReads += 1;
    return collectPage(input);
  };
  await withWorker(activities, async (taskQueue) => {
    const handle = await env.client.workflow.start<(o: ReconciliationOptions) => Promise<ReconciliationReport>>('reconciliation', {
      taskQueue, workflowId: 'reconciliation-w-many', args: [{ ...PERIOD, continueAfterEvents: 60 }],
    });
    const report = await finished(handle);
    const runs = await runChain(env.client, 'reconciliation-w-many', handle.firstExecutionRunId);
    assert.ok(runs.length >= 2, `${runs.length} runs`);
    // the page was read and recorded once: the next run settled what the first carried over
    assert.equal(pageReads, 1);
    assert.ok([...recordings.values()].every((n) => n === 1), 'each mismatch recorded once');
    assert.equal(report.flagged, 60);
    assert.equal(report.newMismatches, 60);
    assert.deepEqual(report.mismatches.map((m) => m.id), facts.map((f) => `amount-mismatch:${f.reference}:${f.providerPayments[0]!.id}`), 'in reference order');
    assert.equal(rows.size, 60);
    for (const id of [report.mismatches[0]!.id, report.mismatches[59]!.id]) {
      assert.equal((await env.client.workflow.getHandle(mismatchWorkflowId(id)).query(mismatchStateQuery)).status, 'OPEN');
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

test('records the histories: a run, an operator\'s failed and accepted decisions, a refund at the provider', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
  await recordEachWay(async (patches: PatchMode) => {
    // keys of their own per mode: a mismatch's workflow id derives from its facts
    const key = (name: string) => `w-rec-${patches}-${name}`;
    const ghost = captured(key('ghost'), 'CANCELLED');
    ghost.payment = null;
    ghost.order = null;
    const { activities, rows } = fakeRecords([captured(key('cancelled'), 'CANCELLED'), captured(key('amount'), 'PAID', 900), captured(key('closed'), 'AWAITING_PAYMENT'), ghost]);
    // The provider takes its time over the refund: the wait's checks grow to their 30 s cap, where
    // BOUNDED_MISMATCH_WAITS_PATCH turned them bounded (about a minute of real time: see below).
    let reads = 0;
    activities.readProviderRefund = async ({ refundId }) => ({ refundId, status: ++reads < 6 ? 'PENDING' : 'SUCCEEDED', amountMinor: 0, failureReason: null });
    const { met } = await withRecordingWorker(env, { workflowBundle, activities, patches }, async (taskQueue) => {
      const run = await env.client.workflow.start<(o: ReconciliationOptions) => Promise<ReconciliationReport>>('reconciliation', {
        taskQueue, workflowId: `reconciliation-${key('run')}`, args: [PERIOD],
      });
      await finished(run);
      const closedId = `status-mismatch:order-${key('closed')}:psp_${key('closed')}`;
      const closed = env.client.workflow.getHandle(mismatchWorkflowId(closedId));
      await closed.signal(resolveMismatchSignal, { action: 'complete-order', by: 'bob', note: 'try again' });
      for (let i = 0; i < 100 && !rows.get(closedId)!.details.lastAttempt; i++) await new Promise((r) => setTimeout(r, 50));
      await closed.signal(resolveMismatchSignal, { action: 'accept', by: 'bob', note: 'completed by hand in the back office' });
      await finished(closed);
      const refunded = env.client.workflow.getHandle(mismatchWorkflowId(`missing-ours:order-${key('ghost')}:psp_${key('ghost')}`));
      await refunded.signal(resolveMismatchSignal, { action: 'refund', by: 'bob', note: 'not ours' });
      // in real time, as everywhere here (see finished()): about a minute
      await finished(refunded);
      for (const [base, handle] of [['reconciliation-run', run], ['mismatch-resolution', closed], ['mismatch-resolution-provider-refund', refunded]] as const) {
        await writeHistoryFile(`${HISTORIES_DIR}${recordedName(base, patches)}.json`, await handle.fetchHistory());
      }
    });
    return met;
  });
});

test('recorded reconciliation and mismatch-resolution histories replay on the current code', async () => {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  const missing = [...FROM_BEFORE_PATCHES, ...RECORDED.map((base) => `${recordedName(base, 'current')}.json`)].filter((f) => !files.includes(f));
  assert.deepEqual(missing, [], `histories missing from ${HISTORIES_DIR}: record them (see the top of this file)`);
  for (const file of files) {
    // the test ring reads histories recorded under it; the older, unencrypted ones pass through
    await Worker.runReplayHistory({ workflowBundle, dataConverter: testDataConverter() }, await readHistoryFile(HISTORIES_DIR + file), file);
  }
});
