// Waits with no end in sight stay bounded in history events (issue 12): held for a week of
// workflow time on the time-skipping server, each slows to hourly checks, shows NeedsAttention
// with what it waits for once it has waited past an hour, clears it when the wait ends, and the
// run then finishes normally. A mismatch's waits also continue as new before the history grows
// long; a checkout cannot (it is in the middle of its compensation), so hourly checks bound it.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { ProviderRefundView } from '../../activities/reconciliation.ts';
import type { RefundWorkflowOutcome } from '../../activities/refund-child.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { ApplicationFailure } from '@temporalio/common';
import { checkoutStateQuery, checkoutWorkflowId, refundRequestIdFor, type CheckoutInput } from '../../shared/checkout.ts';
import { retryStepSignal } from '../../shared/operations.ts';
import {
  mismatchStartAttributes,
  mismatchStateQuery,
  mismatchWorkflowId,
  resolveMismatchSignal,
  type MismatchStatus,
} from '../../shared/reconciliation.ts';
import { refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { FlowStatusKey, NeedsAttentionKey, OrderIdKey } from '../../shared/search-attributes.ts';
import type { checkout } from '../../workflows/checkout.ts';
import { CONTINUE_AS_NEW_AFTER_EVENTS, type MismatchResolutionInput } from '../../workflows/mismatch-resolution.ts';
import { checkoutInput, mockActivities, refundState, startTestServer, until, WORKFLOWS_WITH_FAKE_REFUND_PATH } from '../support/checkout-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';

const STAND_IN_CHECKOUT_PATH = fileURLToPath(new URL('../fixtures/workflows/operator-stand-ins.ts', import.meta.url));

let env: TestWorkflowEnvironment;
/** The checkout and the mismatch workflows, with a stand-in Refund workflow. */
let workflowBundle: WorkflowBundle;
/** A run registered as `checkout` that is up and does nothing: the checkout a `complete-order` nudges. */
let standInBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  [workflowBundle, standInBundle] = await Promise.all([
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') }),
    bundleWorkflowCode({ workflowsPath: STAND_IN_CHECKOUT_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') }),
  ]);
});
after(async () => {
  await env?.teardown();
});

const HOUR = 60 * 60_000;
const WEEK = 7 * 24 * HOUR;
/**
 * A check costs 11 events: timer started and fired, a workflow task (3), the activity scheduled,
 * started and completed, another workflow task (3); an upsert now and then adds one.
 */
const EVENTS_PER_CHECK = 12;
/**
 * Checks in a week: intervals double from 1 s to an hour, about a dozen checks in the first
 * hour, then one an hour. Every 30 s, as before, would be 20,160 checks: over 220,000 events.
 */
const CHECKS_IN_A_WEEK = 12 + WEEK / HOUR;

const { EventType } = proto.temporal.api.enums.v1;

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return currentDetails ?? '';
}

/** Polls in real time (queries do not move the time-skipping clock) until `ready` holds. */
async function eventually(ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every run of a workflow from its first, with how many history events each holds and how it ended. */
async function runsOf(workflowId: string, firstRunId: string): Promise<{ runId: string; events: number; closedBy: string }[]> {
  const runs = [];
  for (let runId: string | undefined = firstRunId; runId !== undefined; ) {
    const history: proto.temporal.api.history.v1.IHistory = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    const last = events.at(-1);
    runs.push({ runId, events: events.length, closedBy: EventType[last?.eventType ?? 0] ?? '' });
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

let run = 0;

describe('a checkout waiting for a refund someone else started', () => {
  test('looks at most hourly for a week, needs attention past an hour naming the refund, then completes once it ends', async () => {
    const checkoutKey = 'bounded-existing-refund';
    const requestId = refundRequestIdFor(checkoutKey);
    const refundId = refundWorkflowId(requestId);
    let decided = false;
    let looks = 0;
    const acts = mockActivities({
      // the stock is gone by the time the payment is captured: the capture is refunded
      commitStock: async () => {
        throw ApplicationFailure.nonRetryable('reservation was released', BusinessFailure.AlreadyCompensated, { code: 'reservation_released' });
      },
      // the refund that took the id first is the test's own: it moves nothing of the mocked provider's money
      fakeRefund: async (input) => refundState(input, 0, 'SUCCEEDED'),
      // the refund found under the checkout's id waits for an operator there, until the test decides it
      readRefundWorkflow: async ({ workflowId }): Promise<RefundWorkflowOutcome> => {
        looks += 1;
        const asked: RefundInput = { requestId, orderId: `order-${checkoutKey}`, amount: 'full', reason: 'earlier', restock: [], requestedBy: 'checkout' };
        assert.equal(workflowId, refundId);
        return decided
          ? { execution: 'COMPLETED', state: refundState(asked, 4000, 'SUCCEEDED') }
          : { execution: 'RUNNING', state: { ...refundState(asked, 4000, 'SUCCEEDED'), status: 'AWAITING_APPROVAL', provider: null } };
      },
    });
    const taskQueue = `bounded-waits-checkout-${process.pid}-${++run}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle, activities: acts });
    const { result, handle } = await worker.runUntil(async () => {
      // someone started the refund under this checkout's id before it got there (it is taken: startChild fails)
      await env.client.workflow.execute('refund', {
        taskQueue,
        workflowId: refundId,
        args: [{ requestId, orderId: `order-${checkoutKey}`, amount: 'full', reason: 'earlier', restock: [], requestedBy: 'checkout' } satisfies RefundInput],
      });
      const input: CheckoutInput = checkoutInput(checkoutKey, { timing: { firstPaymentCheckMs: 10, maxPaymentCheckIntervalMs: 10 } });
      const handle = await env.client.workflow.start<typeof checkout>('checkout', { args: [input], taskQueue, workflowId: checkoutWorkflowId(checkoutKey) });
      await until(() => looks > 0);
      const looksBefore = looks;
      await env.sleep(HOUR / 2);
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), false, 'half an hour is not yet a stall');
      await env.sleep(WEEK - HOUR / 2);

      const state = await handle.query(checkoutStateQuery);
      assert.equal(state.step, 'COMPENSATING');
      assert.deepEqual(state.refund, { workflowId: refundId, status: 'RUNNING', amountMinor: null, failure: null });
      assert.ok(looks - looksBefore <= CHECKS_IN_A_WEEK, `${looks - looksBefore} looks in a week: at most hourly after the first hour`);
      assert.ok(looks - looksBefore >= WEEK / HOUR - 1, `${looks - looksBefore} looks in a week: it kept looking`);
      const events = (await handle.fetchHistory()).events?.length ?? 0;
      assert.ok(events < CHECKS_IN_A_WEEK * EVENTS_PER_CHECK + 200, `${events} events after a week`);
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), true, 'a week waiting for a refund needs an operator');
      assert.match(await currentDetails(handle), new RegExp(`another run \\(still AWAITING_APPROVAL\\) has not settled the refund ${refundId} since \\d{4}-\\d\\d-\\d\\dT`));

      // decided over there; the operator's retryStep makes the checkout look now instead of within the hour
      decided = true;
      await handle.signal(retryStepSignal, { by: 'ops-anna', reason: 'the refund was approved' });
      await eventually(async () => (await handle.describe()).status.name === 'COMPLETED');
      return { result: await handle.result(), handle };
    });
    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(result.refund, { workflowId: refundId, status: 'SUCCEEDED', amountMinor: 4000, failure: null });
    assert.equal(result.payment.refundedMinor, 4000);
    assert.deepEqual(acts.calls.map((c) => c.name).slice(-3), ['unlockCoupon', 'releaseStock', 'cancelOrder'], 'the rest of the undo ran after it');
    const attributes = (await handle.describe()).typedSearchAttributes;
    assert.equal(attributes.get(NeedsAttentionKey), false, 'the refund ended: nobody is needed any more');
    assert.equal(attributes.get(FlowStatusKey), 'CANCELLED');
  });
});

describe('a mismatch carrying out a decision', () => {
  /** Our reconciliation records and the provider, in memory; `provider` and `order` say where they stand. */
  function mismatchActivities() {
    const world = {
      provider: 'PENDING' as ProviderRefundView['status'],
      orderStatus: 'AWAITING_PAYMENT',
      providerRefunds: [] as string[],
      providerChecks: 0,
      orderChecks: 0,
      marked: [] as { status: MismatchStatus; action: string; by: string }[],
    };
    const activities = {
      readRefundTarget: async () => ({ heldMinor: 1000, currency: 'EUR', ours: false }),
      startProviderRefund: async ({ idempotencyKey, amountMinor }: { idempotencyKey: string; amountMinor: number }): Promise<ProviderRefundView> => {
        world.providerRefunds.push(idempotencyKey);
        return { refundId: `re_${idempotencyKey}`, status: 'PENDING', amountMinor, failureReason: null };
      },
      readProviderRefund: async ({ refundId }: { refundId: string }): Promise<ProviderRefundView> => {
        world.providerChecks += 1;
        return { refundId, status: world.provider, amountMinor: 1000, failureReason: null };
      },
      getOrderStatus: async () => {
        world.orderChecks += 1;
        return world.orderStatus;
      },
      markMismatch: async ({ status, action, by }: { status: MismatchStatus; action: string; by: string }) => {
        world.marked.push({ status, action, by });
      },
      noteMismatch: async () => {},
    };
    return { world, activities };
  }

  async function withMismatchWorker<T>(activities: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `bounded-waits-mismatch-${process.pid}-${++run}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle, activities });
    return worker.runUntil(fn(taskQueue));
  }

  const startMismatch = (input: MismatchResolutionInput, taskQueue: string) =>
    env.client.workflow.start('mismatchResolution', {
      args: [input],
      taskQueue,
      workflowId: mismatchWorkflowId(input.mismatchId),
      typedSearchAttributes: mismatchStartAttributes(input),
    });

  /** What every week-long wait of a mismatch shows: each run stays short, and the chain as a whole is bounded. */
  async function assertContinuedAsNew(handle: WorkflowHandle, firstRunId: string) {
    const runs = await runsOf(handle.workflowId, firstRunId);
    assert.ok(runs.length >= 2, `${runs.length} run(s): a week of checks continues as new`);
    for (const { runId, events } of runs) {
      // a run continues as new at its first check past the threshold
      assert.ok(events <= CONTINUE_AS_NEW_AFTER_EVENTS + 2 * EVENTS_PER_CHECK, `run ${runId}: ${events} events`);
    }
    const total = runs.reduce((sum, r) => sum + r.events, 0);
    assert.ok(total < CHECKS_IN_A_WEEK * EVENTS_PER_CHECK + 100 * runs.length, `${total} events in a week over ${runs.length} runs`);
    assert.deepEqual(runs.slice(0, -1).map((r) => r.closedBy), runs.slice(0, -1).map(() => 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW'));
    return runs;
  }

  test('a refund the provider has not decided for a week: hourly checks, needs attention naming the refund, continues as new, then resolves', async () => {
    const { world, activities } = mismatchActivities();
    const input: MismatchResolutionInput = {
      mismatchId: 'missing-ours:order-bw-ghost:psp_bw-ghost',
      kind: 'MISSING_OURS',
      reference: 'order-bw-ghost',
      pspPaymentId: 'psp_bw-ghost',
      summary: 'money no payment of ours stands for',
    };
    await withMismatchWorker(activities, async (taskQueue) => {
      const handle = await startMismatch(input, taskQueue);
      const firstRunId = handle.firstExecutionRunId;
      await handle.signal(resolveMismatchSignal, { action: 'refund', by: 'ops-bob', note: 'not ours' });
      await until(() => world.providerChecks > 0);
      const checksBefore = world.providerChecks;
      await env.sleep(HOUR / 2);
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), false, 'half an hour is not yet a stall');
      await env.sleep(WEEK - HOUR / 2);

      const latest = env.client.workflow.getHandle(handle.workflowId);
      const now = await latest.describe();
      assert.notEqual(now.runId, firstRunId, 'the waiting run continued as new');
      assert.equal(now.status.name, 'RUNNING');
      assert.equal(now.typedSearchAttributes.get(NeedsAttentionKey), true, 'a refund undecided for a week needs an operator');
      assert.equal(now.typedSearchAttributes.get(FlowStatusKey), 'OPEN');
      assert.equal(now.typedSearchAttributes.get(OrderIdKey), 'order-bw-ghost', 'the new run keeps the search attributes');
      const refundId = `re_reconciliation:${input.mismatchId}:refund:ops-bob-1`;
      assert.match(
        await currentDetails(latest),
        new RegExp(`carrying out refund decided by ops-bob · the provider has not decided refund ${refundId.replace(/[.]/g, '\\.')} since \\d{4}-\\d\\d-\\d\\dT.*; asking at most hourly — needs an operator`),
      );
      assert.deepEqual((await latest.query(mismatchStateQuery)).pending, { action: 'refund', by: 'ops-bob', note: 'not ours' });
      const checks = world.providerChecks - checksBefore;
      assert.ok(checks <= CHECKS_IN_A_WEEK && checks >= WEEK / HOUR - 1, `${checks} checks in a week`);
      await assertContinuedAsNew(handle, firstRunId);

      world.provider = 'SUCCEEDED';
      const result = await handle.result();
      assert.equal(result.status, 'RESOLVED');
      assert.deepEqual(result.resolution, { action: 'refund', by: 'ops-bob', note: 'not ours' });
      const closed = (await latest.describe()).typedSearchAttributes;
      assert.equal(closed.get(NeedsAttentionKey), false, 'decided: nobody is needed any more');
      assert.equal(closed.get(FlowStatusKey), 'RESOLVED');
    });
    assert.deepEqual(world.providerRefunds, [`reconciliation:${input.mismatchId}:refund:ops-bob-1`], 'the refund is asked for once, not again by the new run');
    assert.deepEqual(world.marked, [{ status: 'RESOLVED', action: 'refund', by: 'ops-bob' }]);
  });

  test('an order not paid for a week after complete-order: hourly checks, needs attention naming the order, continues as new, then resolves', async () => {
    const { world, activities } = mismatchActivities();
    const input: MismatchResolutionInput = {
      mismatchId: 'status-mismatch:order-bw-late:psp_bw-late',
      kind: 'STATUS_MISMATCH',
      reference: 'order-bw-late',
      pspPaymentId: 'psp_bw-late',
      summary: 'captured but the order is not paid',
      completionWaitMs: 30 * 24 * HOUR,
    };
    const standInQueue = `bounded-waits-stand-in-${process.pid}-${++run}`;
    const standIn = await Worker.create({ connection: env.nativeConnection, taskQueue: standInQueue, dataConverter: testDataConverter(), workflowBundle: standInBundle });
    await standIn.runUntil(withMismatchWorker(activities, async (taskQueue) => {
      const nudged = await env.client.workflow.start('checkout', { args: [{ stepWaiting: false }], taskQueue: standInQueue, workflowId: checkoutWorkflowId('bw-late') });
      const handle = await startMismatch(input, taskQueue);
      const firstRunId = handle.firstExecutionRunId;
      await handle.signal(resolveMismatchSignal, { action: 'complete-order', by: 'ops-carl', note: 'the provider captured it' });
      await until(() => world.orderChecks > 0);
      const checksBefore = world.orderChecks;
      await env.sleep(WEEK);

      const latest = env.client.workflow.getHandle(handle.workflowId);
      const now = await latest.describe();
      assert.notEqual(now.runId, firstRunId, 'the waiting run continued as new');
      assert.equal(now.typedSearchAttributes.get(NeedsAttentionKey), true, 'an order unpaid for a week needs an operator');
      assert.match(
        await currentDetails(latest),
        /carrying out complete-order decided by ops-carl · order order-bw-late is still AWAITING_PAYMENT since checkout checkout-bw-late was nudged at \d{4}-\d\d-\d\dT.*; checking at most hourly until \d{4}-.* — needs an operator/,
      );
      const checks = world.orderChecks - checksBefore;
      assert.ok(checks <= CHECKS_IN_A_WEEK && checks >= WEEK / HOUR - 1, `${checks} checks in a week`);
      await assertContinuedAsNew(handle, firstRunId);

      world.orderStatus = 'PAID';
      const result = await handle.result();
      assert.equal(result.status, 'RESOLVED');
      const closed = (await latest.describe()).typedSearchAttributes;
      assert.equal(closed.get(NeedsAttentionKey), false, 'paid: nobody is needed any more');
      assert.equal(closed.get(FlowStatusKey), 'RESOLVED');
      // The stand-in only receives the nudge; on a loaded machine it was once found closed already
      // here ("Completed workflow"), which says nothing about the mismatch this test is about.
      await nudged.terminate('test over').catch((err: unknown) => {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      });
    }));
    assert.deepEqual(world.marked, [{ status: 'RESOLVED', action: 'complete-order', by: 'ops-carl' }]);
  });
});
