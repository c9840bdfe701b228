// Steps that must not give up, when their service stays down: after a bounded number of attempts
// the run shows it (NeedsAttention, the step and the service's last error in its current details),
// keeps trying on a slow timer that the operator's retryStep cuts short, and goes on with the same
// idempotency key once the service is back. Time-skipping server, mocked activities.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, type Workflow } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { checkoutStateQuery, checkoutWorkflowId } from '../../shared/checkout.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { retryStepUpdate } from '../../shared/operations.ts';
import { refundStateQuery } from '../../shared/refunds.ts';
import { NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { STUCK_AFTER_ATTEMPTS, STUCK_STEP_PATCH } from '../../workflows/refused-steps.ts';
import {
  checkoutInput, declined, mockActivities, runCheckout, startTestServer, until, type MockActivities,
} from '../support/checkout-harness.ts';
import { testDataConverter } from '../support/payload-keys.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen, withRefundWorker } from '../support/refund-harness.ts';

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  // The real refund workflow too: these checkouts never reach a refund, the refund test needs it.
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') });
});
after(async () => {
  await env?.teardown();
});

type Handle = WorkflowHandle<Workflow>;

const needsAttention = async (handle: Handle) => (await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey) === true;
const currentDetails = async (handle: Handle) =>
  (await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '';
const retryNow = (handle: Handle) =>
  handle.executeUpdate(retryStepUpdate, { args: [{ by: 'ops-anna', reason: 'the service is back' }] });

/**
 * What activities/http.ts makes of a 503 or an unreachable service: a retryable failure naming the
 * service. The test server waits out an activity's retry backoff in real time (about 4 minutes to
 * the bound), so the attempts here ask to be retried at once; they count against the bound the same.
 */
const unavailable = (message: string) => ApplicationFailure.create({ type: 'ServiceUnavailable', message, nextRetryDelay: '10 milliseconds' });

/**
 * Polls, in real time, until the run needs attention. The first slow wait is 1 minute and the test
 * server's clock only runs on when the test waits for a result: the run is then sitting in that
 * wait, and only the operator's retry can end it.
 */
async function untilItNeedsAttention(handle: Handle): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await needsAttention(handle))) {
    assert.ok(Date.now() < deadline, 'the step never showed as needing attention');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The step's run replays from its own history: the bounded retry and the slow wait are versioned commands. */
async function replays(handle: Handle): Promise<void> {
  const history = await handle.fetchHistory();
  const patches = (history.events ?? []).flatMap((e) =>
    e.markerRecordedEventAttributes?.markerName === 'core_patch'
      ? (e.markerRecordedEventAttributes.details?.['patch-data']?.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString())
      : [],
  );
  assert.ok(patches.some((p) => p.includes(STUCK_STEP_PATCH)), `the run recorded the ${STUCK_STEP_PATCH} marker: ${patches.join(', ')}`);
  await Worker.runReplayHistory({ workflowBundle, dataConverter: testDataConverter() }, history);
}

const callsTo = (acts: MockActivities, name: keyof MockActivities) => acts.calls.filter((c) => c.name === name);

describe('a step whose service stays unavailable', () => {
  test('a capture the payments service keeps failing shows with its last error; retryStep tries it now and the checkout ends PAID under one key', async () => {
    let serviceUp = false;
    const acts = mockActivities();
    const capture = acts.capturePayment;
    acts.capturePayment = async (input) => {
      if (serviceUp) return capture(input);
      acts.calls.push({ name: 'capturePayment', input: { ...input } });
      throw unavailable(`payments service answered 503 psp_unavailable to POST /payments/${input.orderId}/capture`);
    };
    const input = checkoutInput('stuck-capture-1');
    const { result, handle } = await runCheckout(env, workflowBundle, acts, input, async (handle) => {
      await untilItNeedsAttention(handle);
      assert.equal(callsTo(acts, 'capturePayment').length, STUCK_AFTER_ATTEMPTS, 'shown once the bounded attempts are spent');
      const details = await currentDetails(handle);
      assert.match(details, /capturePayment keeps failing \(ServiceUnavailable: payments service answered 503 psp_unavailable to POST \/payments\/\S+\/capture\)/);
      assert.match(details, /retrying in 1 min — needs an operator/);
      const waiting = await handle.query(checkoutStateQuery);
      assert.equal(waiting.step, 'CAPTURING_PAYMENT');
      assert.equal(waiting.status, 'RUNNING', 'the capture is never given up: nothing is compensated');

      serviceUp = true;
      const state = await retryNow(handle);
      assert.equal((state as { step: string }).step, 'CAPTURING_PAYMENT');
      // the clock stands still while the test only updates and queries: the retry itself tried again
      await until(() => callsTo(acts, 'capturePayment').length === STUCK_AFTER_ATTEMPTS + 1);
    });

    assert.equal(result.status, 'PAID');
    assert.equal(result.capturedMinor, 4000);
    assert.deepEqual(
      new Set(callsTo(acts, 'capturePayment').map((c) => c.input.idempotencyKey)),
      new Set([`${checkoutWorkflowId(input.checkoutKey)}:capture-payment`]),
      'every attempt, before and after the wait, carries the same key',
    );
    assert.equal(callsTo(acts, 'voidPayment').length, 0, 'money may have moved: never compensated');
    assert.equal(await needsAttention(handle), false, 'through: nobody is needed any more');
    await replays(handle);
  });

  test('a compensation the payments service keeps failing shows with its last error; retryStep tries it now and the undo completes under one key', async () => {
    let serviceUp = false;
    const acts = mockActivities({ authorizePayment: async () => { throw declined(); } });
    const release = acts.voidPayment;
    acts.voidPayment = async (input) => {
      if (serviceUp) return release(input);
      acts.calls.push({ name: 'voidPayment', input: { ...input } });
      throw unavailable(`payments service unreachable (fetch failed: connect ECONNREFUSED): POST /payments/${input.orderId}/void`);
    };
    const input = checkoutInput('stuck-void-1');
    const { result, handle } = await runCheckout(env, workflowBundle, acts, input, async (handle) => {
      await untilItNeedsAttention(handle);
      assert.equal(callsTo(acts, 'voidPayment').length, STUCK_AFTER_ATTEMPTS);
      assert.match(await currentDetails(handle), /voidPayment keeps failing \(ServiceUnavailable: payments service unreachable \(fetch failed: connect ECONNREFUSED\): POST \/payments\/\S+\/void\)/);
      const waiting = await handle.query(checkoutStateQuery);
      assert.equal(waiting.step, 'COMPENSATING');
      assert.ok(!acts.calls.some((c) => c.name === 'unlockCoupon'), 'the undo waits in order: nothing older is undone before the payment');

      serviceUp = true;
      await retryNow(handle);
      await until(() => callsTo(acts, 'voidPayment').length === STUCK_AFTER_ATTEMPTS + 1);
    });

    assert.equal(result.status, 'CANCELLED');
    assert.match(result.cancelReason ?? '', new RegExp(`^${BusinessFailure.PaymentDeclined}`));
    assert.ok(result.compensations.every((c) => c.status === 'DONE'), JSON.stringify(result.compensations));
    assert.deepEqual(
      new Set(callsTo(acts, 'voidPayment').map((c) => c.input.idempotencyKey)),
      new Set([`${checkoutWorkflowId(input.checkoutKey)}:void-payment`]),
      'a void that got no answer is the same void when tried again',
    );
    const names = acts.calls.map((c) => c.name);
    assert.deepEqual(names.slice(names.lastIndexOf('voidPayment') + 1), ['unlockCoupon', 'releaseStock', 'cancelOrder'], 'then the rest of the undo');
    assert.equal(await needsAttention(handle), false);
    await replays(handle);
  });

  test('a refund effect the orders service keeps failing shows with its last error; retryStep tries it now and the refund succeeds under one key', async () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let serviceUp = false;
    const keys: unknown[] = [];
    const acts = mockRefundActivities(world, {
      recordOrderRefund: async (input) => {
        keys.push(input.idempotencyKey);
        if (!serviceUp) throw unavailable(`orders service answered 503 unavailable to POST /orders/${input.orderId}/refunds`);
        return happy.recordOrderRefund(input);
      },
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const handle = await start(refundInput('stuck-effect-1'));
      await untilItNeedsAttention(handle);
      assert.equal(keys.length, STUCK_AFTER_ATTEMPTS);
      assert.match(
        await currentDetails(handle),
        /Record the refund on the order keeps failing \(ServiceUnavailable: orders service answered 503 unavailable to POST \/orders\/order-r1\/refunds\)/,
      );
      assert.equal((await handle.query(refundStateQuery)).status, 'APPLYING_EFFECTS');

      serviceUp = true;
      await retryNow(handle);
      await until(() => keys.length === STUCK_AFTER_ATTEMPTS + 1);
      const state = await stateWhen(handle, (s) => s.status === 'SUCCEEDED');
      assert.equal(await needsAttention(handle), false);
      await replays(handle);
      return state;
    });

    assert.equal(result.effects.orderStatus, 'PARTIALLY_REFUNDED');
    assert.equal(keys.length, STUCK_AFTER_ATTEMPTS + 1);
    assert.deepEqual(new Set(keys), new Set(['refund-stuck-effect-1:record-order-refund']));
  });

  test('a refund request the payments service keeps failing shows before the provider is asked; retryStep sends it once, under one key', async () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let serviceUp = false;
    const keys: unknown[] = [];
    const acts = mockRefundActivities(world, {
      requestProviderRefund: async (input) => {
        keys.push(input.idempotencyKey);
        if (!serviceUp) throw unavailable('payments service could not be reached (POST /payments/order-r1/refunds)');
        return happy.requestProviderRefund(input);
      },
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const handle = await start(refundInput('stuck-request-1'));
      await untilItNeedsAttention(handle);
      assert.equal(keys.length, STUCK_AFTER_ATTEMPTS);
      assert.match(await currentDetails(handle), /Request the refund keeps failing \(ServiceUnavailable: payments service could not be reached/);
      assert.equal((await handle.query(refundStateQuery)).status, 'REFUNDING');

      serviceUp = true;
      await retryNow(handle);
      const state = await stateWhen(handle, (s) => s.status === 'SUCCEEDED');
      assert.equal(await needsAttention(handle), false);
      await replays(handle);
      return state;
    });

    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(keys.length, STUCK_AFTER_ATTEMPTS + 1);
    assert.deepEqual(new Set(keys), new Set(['refund-stuck-request-1:request-refund']));
  });
});
