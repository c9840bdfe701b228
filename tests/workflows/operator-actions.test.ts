// Operator actions as Temporal Updates on the time-skipping server: an accepted action answers
// with the run's new state and the run proceeds; a refused one fails with its code and leaves
// nothing in history; the same action as a signal runs the same rule and a refused signal shows
// in the run's current details. Four eyes on refund approval; no cancel once capture started;
// a refund found under a checkout's own id that is for another order is not its money back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import {
  cancelCheckoutSignal,
  cancelCheckoutUpdate,
  checkoutStateQuery,
  checkoutWorkflowId,
  refundRequestIdFor,
  type CheckoutInput,
} from '../../shared/checkout.ts';
import {
  cancelDistributionUpdate,
  distributionProgressQuery,
  distributionWorkflowId,
  pauseDistributionSignal,
  pauseDistributionUpdate,
  resumeDistributionUpdate,
  type DistributionProgress,
} from '../../shared/coupons.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { retryStepSignal, retryStepUpdate } from '../../shared/operations.ts';
import { mismatchStateQuery, resolveMismatchSignal, resolveMismatchUpdate, type ResolutionAction } from '../../shared/reconciliation.ts';
import {
  abandonRefundUpdate,
  approveRefundSignal,
  approveRefundUpdate,
  isReservedRefundRequestId,
  reconciliationRefundRequestId,
  refundManuallyUpdate,
  refundStateQuery,
  refundWorkflowId,
  rejectRefundUpdate,
  retryRefundUpdate,
  type RefundInput,
  type RefundState,
} from '../../shared/refunds.ts';
import { NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import type { checkout } from '../../workflows/checkout.ts';
import type { MismatchResolutionInput } from '../../workflows/mismatch-resolution.ts';
import { DEFAULT_REFUND_POLICY } from '../../workflows/refund.ts';
import { checkoutInput, gate, mockActivities, refundState, startTestServer, until, WORKFLOWS_WITH_FAKE_REFUND_PATH, type MockActivities } from '../support/checkout-harness.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen, withRefundWorker, type RefundWorld } from '../support/refund-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';

let env: TestWorkflowEnvironment;
/** The real workflows (refund, distribution). */
let realBundle: WorkflowBundle;
/** The checkout and the mismatch with a stand-in Refund workflow. */
let fakeRefundBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  [realBundle, fakeRefundBundle] = await Promise.all([
    bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') }),
  ]);
});
after(async () => {
  await env?.teardown();
});

const { EventType } = proto.temporal.api.enums.v1;
const LARGE = DEFAULT_REFUND_POLICY.approvalThresholdMinor + 1;
const largeWorld = (extra: Partial<RefundWorld> = {}) =>
  refundWorld({ capturedMinor: 20_000, order: { ...refundWorld().order, totalMinor: 20_000 }, awardedPoints: 200, ...extra });

/** The update events in the run's history (a refused update writes none). */
async function updateEvents(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).map((e) => EventType[e.eventType ?? 0] ?? '').filter((name) => name.includes('UPDATE'));
}

/** The update is refused with `code`, as the API sees it. */
async function refusedWith(attempt: Promise<unknown>, code: string): Promise<string> {
  let message = '';
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError, `expected WorkflowUpdateFailedError, got ${String(err)}`);
    assert.ok(err.cause instanceof ApplicationFailure, 'the refusal is an ApplicationFailure');
    assert.equal(err.cause.type, code);
    assert.equal(err.cause.nonRetryable, true);
    message = err.cause.message;
    return true;
  });
  return message;
}

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return currentDetails ?? '';
}

/** Polls (in real time: queries do not move the time-skipping clock) until `ready` holds. */
async function eventually(ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('refund approval', () => {
  test('approve by another person: the update answers REFUNDING with the decision, and the refund completes', async () => {
    const world = largeWorld();
    await withRefundWorker(env, realBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('upd-approve', { amount: LARGE, requestedBy: 'sup-sam' }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      const state = await handle.executeUpdate(approveRefundUpdate, { args: [{ by: 'fin-fay', reason: 'customer verified' }] });
      assert.equal(state.status, 'REFUNDING');
      assert.deepEqual(state.approval, { decision: 'approved', by: 'fin-fay', reason: 'customer verified' });
      assert.equal((await handle.result()).status, 'SUCCEEDED');
      assert.deepEqual(await updateEvents(handle), ['EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED', 'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED']);
    });
    assert.ok(world.calls.some((c) => c.name === 'requestProviderRefund'));
  });

  test('four eyes: the requester cannot approve by update (no trace in history) nor by signal (shown, not applied); rejecting is allowed', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, realBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('upd-four-eyes', { amount: LARGE, requestedBy: 'sup-sam' }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');

      const message = await refusedWith(handle.executeUpdate(approveRefundUpdate, { args: [{ by: 'sup-sam', reason: 'my own' }] }), 'four_eyes');
      assert.match(message, /sup-sam requested this refund and cannot approve it/);
      assert.deepEqual(await updateEvents(handle), [], 'a refused update leaves no trace in history');

      await handle.signal(approveRefundSignal, { by: 'sup-sam', reason: 'my own, via the CLI' });
      await eventually(async () => (await currentDetails(handle)).includes('ignored signal approve from sup-sam: four_eyes'));
      const unchanged = await handle.query(refundStateQuery);
      assert.equal(unchanged.status, 'AWAITING_APPROVAL');
      assert.equal(unchanged.approval, null);
      assert.ok(!world.calls.some((c) => c.name === 'requestProviderRefund'), 'no money moved');

      const rejected = await handle.executeUpdate(rejectRefundUpdate, { args: [{ by: 'sup-sam', reason: 'asked for by mistake' }] });
      assert.equal(rejected.status, 'REJECTED');
      assert.doesNotMatch(await currentDetails(handle), /ignored signal/, 'the next state change clears the refused signal');
      return handle.result();
    });
    assert.equal(result.status, 'REJECTED');
    assert.deepEqual(result.approval, { decision: 'rejected', by: 'sup-sam', reason: 'asked for by mistake' });
  });
});

describe('a refund that waits for an operator', () => {
  test('each action is refused where it does not apply, accepted where it does; one at a time', async () => {
    const world = largeWorld({ providerSucceeds: () => false });
    const retrying = gate();
    const happy = mockRefundActivities(world);
    const acts = mockRefundActivities(world, {
      retryProviderRefund: async (input) => {
        await retrying.opened;
        return happy.retryProviderRefund(input);
      },
    });
    const result = await withRefundWorker(env, realBundle, acts, async (start) => {
      const handle = await start(refundInput('upd-operator', { amount: LARGE }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      const decision = { by: 'fin-fay', reason: 'checked' };
      await refusedWith(handle.executeUpdate(abandonRefundUpdate, { args: [decision] }), 'not_waiting_for_operator');
      await refusedWith(handle.executeUpdate(retryStepUpdate, { args: [decision] }), 'no_step_waiting');
      await handle.signal(retryStepSignal, { by: 'ops-otto', reason: 'just in case' });
      await eventually(async () => (await currentDetails(handle)).includes('ignored signal retryStep from ops-otto: no_step_waiting'));

      assert.equal((await handle.executeUpdate(approveRefundUpdate, { args: [decision] })).status, 'REFUNDING');
      await stateWhen(handle, (s) => s.status === 'NEEDS_OPERATOR');
      await refusedWith(handle.executeUpdate(rejectRefundUpdate, { args: [{ by: 'fin-finn', reason: 'late' }] }), 'already_decided');
      await refusedWith(handle.executeUpdate(refundManuallyUpdate, { args: [{ ...decision, reference: ' ' }] }), 'invalid_request');

      const retried = await handle.executeUpdate(retryRefundUpdate, { args: [decision] });
      assert.equal(retried.status, 'NEEDS_OPERATOR', 'the retry is under way');
      assert.deepEqual(retried.operatorAction, { action: 'retry', by: 'fin-fay', reason: 'checked' });
      const pending = await refusedWith(handle.executeUpdate(abandonRefundUpdate, { args: [{ by: 'fin-finn', reason: 'give up' }] }), 'action_pending');
      assert.match(pending, /retry by fin-fay/);
      retrying.open();

      // the provider refuses again: back to NEEDS_OPERATOR, waiting for the next decision
      await stateWhen(handle, (s) => s.status === 'NEEDS_OPERATOR' && s.operatorAction === null && (s.provider?.attempts ?? 0) === 2);
      const abandoned = await handle.executeUpdate(abandonRefundUpdate, { args: [{ by: 'fin-finn', reason: 'store credit instead' }] });
      assert.equal(abandoned.status, 'ABANDONED');
      assert.deepEqual(
        await updateEvents(handle),
        ['ACCEPTED', 'COMPLETED', 'ACCEPTED', 'COMPLETED', 'ACCEPTED', 'COMPLETED'].map((e) => `EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_${e}`),
        'approve, retry and abandon are on record; the refusals are not',
      );
      return handle.result();
    });
    assert.equal(result.status, 'ABANDONED');
    assert.match(result.failure ?? '', /abandoned by fin-finn: store credit instead/);
  });

  test('retryStep update ends a refused step\'s wait and answers the state; approve there is not_awaiting_approval', async () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let refusals = 0;
    const acts = mockRefundActivities(world, {
      recordOrderRefund: async (input) => {
        if (refusals++ === 0) throw ApplicationFailure.nonRetryable('order is locked by an export', 'order_locked');
        return happy.recordOrderRefund(input);
      },
    });
    const result = await withRefundWorker(env, realBundle, acts, async (start) => {
      const handle = await start(refundInput('upd-retry-step'));
      await eventually(async () => (await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey) === true);
      await refusedWith(handle.executeUpdate(approveRefundUpdate, { args: [{ by: 'fin-fay', reason: 'ok' }] }), 'not_awaiting_approval');
      const state = (await handle.executeUpdate(retryStepUpdate, { args: [{ by: 'ops-otto', reason: 'export finished' }] })) as RefundState;
      assert.equal(state.status, 'APPLYING_EFFECTS');
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(refusals, 2);
  });
});

describe('checkout cancel', () => {
  let run = 0;
  async function withCheckoutWorker<T>(
    acts: MockActivities,
    fn: (start: (input: CheckoutInput) => Promise<WorkflowHandle<typeof checkout>>, taskQueue: string) => Promise<T>,
  ): Promise<T> {
    const taskQueue = `operator-actions-checkout-${process.pid}-${++run}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle: fakeRefundBundle, activities: acts });
    const start = (input: CheckoutInput) =>
      env.client.workflow.start<typeof checkout>('checkout', { args: [input], taskQueue, workflowId: checkoutWorkflowId(input.checkoutKey) });
    return worker.runUntil(fn(start, taskQueue));
  }

  test('before capture: the update answers COMPENSATING with the reason, and the checkout ends CANCELLED', async () => {
    // the provider never decides: the checkout waits on its timers, nothing in flight
    const acts = mockActivities({
      syncPayment: async ({ orderId }) => ({ paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING', amountMinor: 4000, capturedMinor: 0, refundedMinor: 0, declineCode: null }),
    });
    const result = await withCheckoutWorker(acts, async (start) => {
      const handle = await start(checkoutInput('upd-cancel-1'));
      await eventually(async () => (await handle.query(checkoutStateQuery)).step === 'AWAITING_PAYMENT');
      const state = await handle.executeUpdate(cancelCheckoutUpdate, { args: [{ by: 'cust-1', reason: 'changed my mind' }] });
      assert.equal(state.step, 'COMPENSATING');
      assert.equal(state.cancelReason, 'changed my mind');
      return handle.result();
    });
    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.cancelReason, 'changed my mind');
    assert.ok(acts.calls.some((c) => c.name === 'voidPayment'));
    assert.ok(!acts.calls.some((c) => c.name === 'capturePayment'));
  });

  test('after capture started: refused with capture_started and no trace in history; the signal is shown as ignored; the checkout ends PAID', async () => {
    const capturing = gate();
    const acts: MockActivities = mockActivities({
      capturePayment: async () => {
        await capturing.opened;
        acts.provider.status = 'CAPTURED';
        acts.provider.capturedMinor = 4000;
        return { status: 'CAPTURED', capturedMinor: 4000 };
      },
    });
    const result = await withCheckoutWorker(acts, async (start) => {
      const handle = await start(checkoutInput('upd-cancel-late'));
      await until(() => acts.calls.some((c) => c.name === 'capturePayment'));
      await refusedWith(handle.executeUpdate(cancelCheckoutUpdate, { args: [{ by: 'cust-1', reason: 'too late' }] }), 'capture_started');
      assert.deepEqual(await updateEvents(handle), []);
      await handle.signal(cancelCheckoutSignal, { reason: 'too late, via the CLI' });
      await eventually(async () => /ignored signal cancel from someone: capture_started/.test(await currentDetails(handle)));
      assert.equal((await handle.query(checkoutStateQuery)).cancelReason, null);
      capturing.open();
      return handle.result();
    });
    assert.equal(result.status, 'PAID');
    assert.equal(result.cancelReason, null);
  });

  test('a refund under the cancelled checkout\'s own id for another order is not its money back: the checkout needs an operator', async () => {
    const stockReleased = () => ApplicationFailure.nonRetryable('reservation was released', BusinessFailure.AlreadyCompensated, { code: 'reservation_released' });
    const acts = mockActivities({
      commitStock: async () => {
        throw stockReleased();
      },
      // the squatter's refund moves nothing of this order's payment
      fakeRefund: async (input) => refundState(input, input.amount === 'full' ? 0 : input.amount, 'SUCCEEDED'),
    });
    await withCheckoutWorker(acts, async (start, taskQueue) => {
      // someone's refund squats on the id the checkout derives for its own refund
      const squatterInput: RefundInput = {
        requestId: refundRequestIdFor('upd-foreign'),
        orderId: 'order-elsewhere',
        amount: 100,
        reason: 'not this checkout',
        restock: [],
        requestedBy: 'sup-sam',
      };
      const squatter = await env.client.workflow.start('refund', {
        args: [squatterInput],
        taskQueue,
        workflowId: refundWorkflowId(squatterInput.requestId),
      });
      await squatter.result();

      // the provider decides at once: straight to capture, then to the undo
      const handle = await start(checkoutInput('upd-foreign', { timing: { firstPaymentCheckMs: 10, maxPaymentCheckIntervalMs: 10 } }));
      await eventually(async () => (await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey) === true, 20_000).catch(async (err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(await handle.query(checkoutStateQuery))} · ${await currentDetails(handle)}`);
      });
      const details = await currentDetails(handle);
      assert.match(details, /refundPayment refused \(foreign_refund: refund refund-upd-foreign-cancelled-checkout is not this request's refund \(it refunds order order-elsewhere, not order-upd-foreign\)/);
      const state = await handle.query(checkoutStateQuery);
      assert.equal(state.status, 'RUNNING');
      assert.equal(state.step, 'COMPENSATING');
      assert.equal(state.payment.refundedMinor, 0, 'the money is not counted as returned');
      assert.equal(acts.calls.filter((c) => c.name === 'fakeRefund').length, 1, 'only the squatter ran; the checkout did not take it for its own');
      await handle.terminate('test over');
    });
  });
});

describe('mismatch resolve', () => {
  test('answers the decision being carried out; another meanwhile is refused (update) or shown as ignored (signal); a malformed one is invalid_request', async () => {
    const marking = gate();
    const marked: string[] = [];
    const activities = {
      markMismatch: async ({ action }: { action: ResolutionAction }) => {
        await marking.opened;
        marked.push(action);
      },
      noteMismatch: async () => {},
    };
    const taskQueue = `operator-actions-mismatch-${process.pid}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle: fakeRefundBundle, activities });
    await worker.runUntil(async () => {
      const input: MismatchResolutionInput = { mismatchId: 'm-upd', kind: 'STATUS_MISMATCH', reference: 'order-m', pspPaymentId: null, summary: 'test' };
      const handle = await env.client.workflow.start('mismatchResolution', { args: [input], taskQueue, workflowId: 'mismatch-m-upd' });
      await refusedWith(handle.executeUpdate(resolveMismatchUpdate, { args: [{ action: 'shrug' as ResolutionAction, by: 'ops-olga', note: '?' }] }), 'invalid_request');
      const state = await handle.executeUpdate(resolveMismatchUpdate, { args: [{ action: 'accept', by: 'ops-olga', note: 'fixed by hand' }] });
      assert.equal(state.status, 'OPEN');
      assert.deepEqual(state.pending, { action: 'accept', by: 'ops-olga', note: 'fixed by hand' });
      await refusedWith(handle.executeUpdate(resolveMismatchUpdate, { args: [{ action: 'refund', by: 'ops-oscar', note: 'refund it' }] }), 'action_pending');
      await handle.signal(resolveMismatchSignal, { action: 'refund', by: 'ops-oscar', note: 'refund it' });
      await eventually(async () => (await currentDetails(handle)).includes('ignored signal resolve from ops-oscar: action_pending'));
      marking.open();
      await eventually(async () => (await handle.describe()).status.name === 'COMPLETED');
      assert.deepEqual(marked, ['accept'], 'the refused decision was not carried out');
      assert.equal((await handle.query(mismatchStateQuery)).resolution?.by, 'ops-olga');
      assert.equal((await updateEvents(handle)).length, 2, 'one accepted update, no trace of the refused ones');
    });
  });
});

describe('distribution pause, resume, cancel', () => {
  test('each answers the progress; one that changes nothing is refused; the old argument-less pause signal still works', async () => {
    const counting = gate();
    const activities = {
      countDistributionRecipients: async () => {
        await counting.opened;
        return 0;
      },
      readDistributionRecipients: async () => [],
    };
    const taskQueue = `operator-actions-distribution-${process.pid}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter: testDataConverter(), workflowBundle: realBundle, activities });
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start('couponDistribution', {
        args: [{ distributionId: 'd-upd', campaignId: 'CAMP-1' }],
        taskQueue,
        workflowId: distributionWorkflowId('d-upd'),
      });
      const by = { by: 'mkt-mia', reason: 'check the list' };
      await refusedWith(handle.executeUpdate(resumeDistributionUpdate, { args: [by] }), 'not_paused');
      assert.equal((await handle.executeUpdate(pauseDistributionUpdate, { args: [by] })).status, 'PAUSED');
      await refusedWith(handle.executeUpdate(pauseDistributionUpdate, { args: [by] }), 'already_paused');
      assert.equal((await handle.executeUpdate(resumeDistributionUpdate, { args: [{ by: 'mkt-mia' }] })).status, 'RUNNING');

      await handle.signal(pauseDistributionSignal);
      await eventually(async () => (await handle.query(distributionProgressQuery)).status === 'PAUSED');
      await handle.signal(pauseDistributionSignal);
      await eventually(async () => (await currentDetails(handle)).includes('ignored signal pause from someone: already_paused'));

      const cancelled = await handle.executeUpdate(cancelDistributionUpdate, { args: [{ by: 'mkt-mia', reason: 'wrong list' }] });
      assert.equal(cancelled.status, 'CANCELLED');
      await refusedWith(handle.executeUpdate(resumeDistributionUpdate, { args: [by] }), 'already_cancelled');
      await refusedWith(handle.executeUpdate(cancelDistributionUpdate, { args: [{ by: 'mkt-mia', reason: 'again' }] }), 'already_cancelled');
      assert.match(await currentDetails(handle), /cancelled by mkt-mia: wrong list/);
      assert.equal((await updateEvents(handle)).length, 6, 'pause, resume and cancel on record; no refusal');
      counting.open();
      return (await handle.result()) as DistributionProgress;
    });
    assert.equal(result.status, 'CANCELLED');
  });
});

describe('ids the system reserves', () => {
  test('a cancelled checkout\'s and a reconciliation fix\'s refund request ids are reserved; a caller\'s are not', () => {
    assert.equal(isReservedRefundRequestId(refundRequestIdFor('any-key')), true);
    assert.equal(isReservedRefundRequestId(reconciliationRefundRequestId('status-mismatch:order-1:psp_1')), true);
    assert.equal(isReservedRefundRequestId('rr-2026-0001'), false);
    assert.equal(isReservedRefundRequestId('cancelled-checkout-by-customer'), false);
  });
});
