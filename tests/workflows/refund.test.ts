// The Refund workflow on the time-skipping server with mocked activities: approval, rejection,
// escalation and expiry; a provider rejection resolved by each operator action; the effects of
// partial and full refunds, with loyalty points reversed in proportion.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import {
  abandonRefundSignal,
  approveRefundSignal,
  refundEventSignal,
  refundManuallySignal,
  refundStateQuery,
  rejectRefundSignal,
  retryRefundSignal,
} from '../../shared/refunds.ts';
import { ApplicationFailure } from '@temporalio/common';
import { retryStepSignal } from '../../shared/operations.ts';
import { CurrencyKey, CustomerIdKey, FlowStatusKey, NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { DEFAULT_REFUND_POLICY } from '../../workflows/refund.ts';
import { startTestServer } from '../support/checkout-harness.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen, withRefundWorker, type RefundWorld } from '../support/refund-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') });
});
after(async () => {
  await env?.teardown();
});

const HOUR = 60 * 60_000;
const names = (world: RefundWorld) => world.calls.map((c) => c.name);
const LARGE = DEFAULT_REFUND_POLICY.approvalThresholdMinor + 1;
/** A payment large enough for refunds above the approval threshold. */
const largeWorld = () =>
  refundWorld({ capturedMinor: 20_000, order: { ...refundWorld().order, totalMinor: 20_000 }, awardedPoints: 200 });

describe('refund effects', () => {
  test('a partial then a full refund: order status, restock, proportional points, coupon back only at the end', async () => {
    const world = refundWorld();
    const acts = mockRefundActivities(world);
    await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const partial = await (await start(refundInput('partial-1', { amount: 1300, restock: [{ sku: 'MUG', quantity: 1 }] }))).result();
      assert.equal(partial.status, 'SUCCEEDED', JSON.stringify(partial));
      assert.equal(partial.amountMinor, 1300);
      assert.deepEqual(partial.approval?.decision, 'not_required');
      // floor(50 × 1300 / 5000) = 13
      assert.deepEqual(partial.effects, { restocked: true, pointsReversed: 13, couponReturned: false, orderStatus: 'PARTIALLY_REFUNDED' });
      assert.equal(world.onHand.MUG, 11);
      assert.equal(world.couponStatus, 'REDEEMED');

      const full = await (await start(refundInput('full-1', { amount: 'full', restock: [{ sku: 'TEE', quantity: 1 }] }))).result();
      assert.equal(full.status, 'SUCCEEDED', JSON.stringify(full));
      assert.equal(full.amountMinor, 3700, "'full' is what is still refundable");
      // the refund that completes the order takes the remainder: 50 − 13
      assert.deepEqual(full.effects, { restocked: true, pointsReversed: 37, couponReturned: true, orderStatus: 'REFUNDED' });
      assert.equal(world.reversedPoints, 50);
      assert.equal(world.couponStatus, 'AVAILABLE');
      assert.equal(world.onHand.TEE, 11);
    });
    const request = world.calls.find((c) => c.name === 'requestProviderRefund')!;
    assert.equal(request.input.idempotencyKey, 'refund-partial-1:request-refund');
    assert.equal(request.input.refundId, 'refund-partial-1');
  });

  test('a refund above what is still refundable is rejected before the provider is asked', async () => {
    const world = refundWorld({ heldMinor: 4000 });
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) =>
      (await start(refundInput('too-much', { amount: 1500 }))).result(),
    );
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failure ?? '', /^refund_exceeds_captured/);
    assert.ok(!names(world).includes('requestProviderRefund'));
  });

  test('the payments service refusing the amount (a concurrent refund took it) rejects the refund with its reason', async () => {
    const world = refundWorld();
    const acts = mockRefundActivities(world, {
      requestProviderRefund: async () => ({ refused: { code: 'refund_exceeds_captured', message: 'only 0 refundable' } }),
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => (await start(refundInput('raced'))).result());
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failure ?? '', /refund_exceeds_captured: only 0 refundable/);
    assert.ok(!names(world).includes('recordOrderRefund'), 'no effects without the money moving');
  });

  test('restock lines that were not ordered are rejected up front', async () => {
    const world = refundWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) =>
      (await start(refundInput('bad-restock', { restock: [{ sku: 'MUG', quantity: 3 }] }))).result(),
    );
    assert.equal(result.status, 'REJECTED');
    assert.match(result.failure ?? '', /invalid_restock: MUG: 3 to restock, 2 ordered/);
  });

  test('a notification cuts the wait for the provider short, and a repeated one is harmless', async () => {
    const world = refundWorld();
    let checks = 0;
    const acts = mockRefundActivities(world, {
      syncProviderRefund: async ({ refundId }) => {
        checks += 1;
        const r = world.refunds.get(refundId)!;
        if (checks >= 2) r.status = 'SUCCEEDED';
        return { status: r.status, failureReason: null, attempt: r.attempt };
      },
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const handle = await start(refundInput('nudged'));
      await stateWhen(handle, (s) => s.status === 'REFUNDING' && s.provider?.status === 'PENDING');
      const event = { eventId: 'evt_1', type: 'refund.succeeded', refundId: handle.workflowId };
      await handle.signal(refundEventSignal, event);
      await handle.signal(refundEventSignal, event);
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(result.provider?.status, 'SUCCEEDED');
  });
});

describe('a refund the provider never decides', () => {
  test('stalls: it asks at most hourly, needs attention, and retryStep asks now', async () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let decides = false;
    let checks = 0;
    const acts = mockRefundActivities(world, {
      syncProviderRefund: async (input) => {
        checks += 1;
        if (!decides) return { status: 'PENDING', failureReason: null, attempt: 1 };
        return happy.syncProviderRefund(input);
      },
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const handle = await start(refundInput('stalled-provider'));
      await stateWhen(handle, (s) => s.status === 'REFUNDING' && s.provider?.status === 'PENDING');
      await env.sleep('6 hours');
      // 64 checks in the first hour (3 s doubling to 60 s); then 120 s doubling to 1 h: 9 more
      // by 6 h. Every 60 s it would have been ~360.
      assert.ok(checks < 80, `${checks} checks in 6 hours`);
      assert.ok(checks > 50, `${checks} checks: it kept asking`);
      assert.equal((await handle.query(refundStateQuery)).status, 'REFUNDING');
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), true, 'a stalled refund needs an operator');
      const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(currentDetails ?? '', /the provider has not settled the refund since \d{4}-\d\d-\d\dT/);

      decides = true;
      await handle.signal(retryStepSignal, { by: 'ops-anna', reason: 'provider says it is done' });
      // the clock stands still while the test only signals and queries: the retry itself asked
      await stateWhen(handle, (s) => s.status === 'SUCCEEDED');
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), false, 'decided: nobody is needed any more');
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(result.provider?.status, 'SUCCEEDED');
  });
});

describe('approval', () => {
  test('a refund above the threshold waits for approval, then goes through', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('approve-1', { amount: LARGE }));
      const waiting = await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      assert.equal(waiting.escalated, false);
      assert.ok(!names(world).includes('requestProviderRefund'), 'the provider waits for the approval');
      const asking = (await handle.describe()).typedSearchAttributes;
      assert.equal(asking.get(NeedsAttentionKey), true, 'waiting for a person shows in the Web UI');
      assert.equal(asking.get(FlowStatusKey), 'AWAITING_APPROVAL');
      await handle.signal(approveRefundSignal, { by: 'ops-anna', reason: 'customer verified' });
      const result = await handle.result();
      const done = (await handle.describe()).typedSearchAttributes;
      assert.equal(done.get(NeedsAttentionKey), false, 'nobody is needed once approved');
      assert.equal(done.get(FlowStatusKey), 'SUCCEEDED');
      assert.equal(done.get(CurrencyKey), world.currency);
      assert.equal(done.get(CustomerIdKey), world.order.customerId);
      return result;
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.deepEqual(result.approval, { decision: 'approved', by: 'ops-anna', reason: 'customer verified' });
    assert.equal(world.order.status, 'PARTIALLY_REFUNDED');
  });

  test('a rejected refund never reaches the provider', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('reject-1', { amount: LARGE }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      await handle.signal(rejectRefundSignal, { by: 'ops-ben', reason: 'item not returned' });
      return handle.result();
    });
    assert.equal(result.status, 'REJECTED');
    assert.deepEqual(result.approval, { decision: 'rejected', by: 'ops-ben', reason: 'item not returned' });
    assert.match(result.failure ?? '', /rejected by ops-ben: item not returned/);
    assert.ok(!names(world).includes('requestProviderRefund'));
  });

  test('a refund nobody decides escalates (visible in the query), and can still be approved', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('escalate-1', { amount: LARGE }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      await env.sleep(DEFAULT_REFUND_POLICY.escalateAfterMs + HOUR);
      const escalated = await stateWhen(handle, (s) => s.status === 'ESCALATED');
      assert.equal(escalated.escalated, true);
      const described = await handle.describe();
      assert.deepEqual(described.typedSearchAttributes.get(FlowStatusKey), 'ESCALATED');
      await handle.signal(approveRefundSignal, { by: 'ops-lead', reason: 'escalation reviewed' });
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(result.escalated, true);
    assert.equal(result.approval?.by, 'ops-lead');
  });

  test('a refund nobody decides expires to rejected after the deadline', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) =>
      (await start(refundInput('expire-1', { amount: LARGE }))).result(),
    );
    assert.equal(result.status, 'REJECTED');
    assert.equal(result.escalated, true);
    assert.equal(result.approval?.decision, 'expired');
    assert.match(result.failure ?? '', /approval_expired/);
    assert.ok(!names(world).includes('requestProviderRefund'));
  });

  test('a pre-approved refund (started by the system) skips the approval whatever the amount', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) =>
      (await start(refundInput('pre-approved', { amount: 'full', preApproved: { by: 'checkout', reason: 'order cancelled after capture' } }))).result(),
    );
    assert.equal(result.status, 'SUCCEEDED');
    assert.deepEqual(result.approval, { decision: 'not_required', by: 'checkout', reason: 'order cancelled after capture' });
    assert.equal(world.couponStatus, 'AVAILABLE');
    assert.equal(world.reversedPoints, 200);
  });
});

describe('a refund the provider rejects waits for an operator', () => {
  const failsFirst = (world: RefundWorld) => {
    world.providerSucceeds = (_id, attempt) => attempt > 1;
    return world;
  };

  test('retry: the provider is asked again and the refund completes', async () => {
    const world = failsFirst(refundWorld());
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('retry-1', { restock: [{ sku: 'MUG', quantity: 1 }] }));
      const stuck = await stateWhen(handle, (s) => s.status === 'NEEDS_OPERATOR');
      assert.deepEqual(stuck.provider, { status: 'FAILED', failureReason: 'refund_rejected', attempts: 1 });
      assert.equal(stuck.effects.restocked, false, 'no effects while the money has not moved');
      await handle.signal(retryRefundSignal, { by: 'ops-anna', reason: 'provider fixed the account' });
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
    assert.equal(result.provider?.attempts, 2);
    assert.equal(result.effects.restocked, true);
    const retry = world.calls.find((c) => c.name === 'retryProviderRefund')!;
    assert.equal(retry.input.idempotencyKey, 'refund-retry-1:retry-1');
  });

  test('refund-manually: recorded as paid outside the provider, with its reference, and the effects follow', async () => {
    const world = failsFirst(refundWorld());
    world.providerSucceeds = () => false;
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('manual-1', { amount: 'full' }));
      await stateWhen(handle, (s) => s.status === 'NEEDS_OPERATOR');
      await handle.signal(refundManuallySignal, { by: 'ops-anna', reason: 'bank transfer', reference: 'SEPA-2026-0042' });
      return handle.result();
    });
    assert.equal(result.status, 'REFUNDED_MANUALLY');
    assert.equal(result.manualReference, 'SEPA-2026-0042');
    assert.equal(result.effects.orderStatus, 'REFUNDED');
    assert.equal(result.effects.couponReturned, true);
    assert.equal(world.reversedPoints, 50);
  });

  test('abandon: the reason is on record and nothing else changes', async () => {
    const world = failsFirst(refundWorld());
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('abandon-1', { restock: [{ sku: 'MUG', quantity: 1 }] }));
      await stateWhen(handle, (s) => s.status === 'NEEDS_OPERATOR');
      // an approval is not what it waits for: ignored
      await handle.signal(approveRefundSignal, { by: 'ops-x', reason: 'wrong button' });
      await handle.signal(abandonRefundSignal, { by: 'ops-ben', reason: 'customer accepted store credit' });
      return handle.result();
    });
    assert.equal(result.status, 'ABANDONED');
    assert.match(result.failure ?? '', /abandoned by ops-ben: customer accepted store credit/);
    assert.deepEqual(result.effects, { restocked: false, pointsReversed: 0, couponReturned: false, orderStatus: null });
    assert.equal(world.order.status, 'PAID');
    assert.equal(world.heldMinor, 0, 'the failed refund released what it held');
  });

  test('an operator action while the refund is not stuck is ignored', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('early-abandon', { amount: LARGE }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      await handle.signal(abandonRefundSignal, { by: 'ops-x', reason: 'too early' });
      assert.equal((await handle.query(refundStateQuery)).status, 'AWAITING_APPROVAL');
      await handle.signal(approveRefundSignal, { by: 'ops-anna', reason: 'ok' });
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
  });
});

describe('refused steps', () => {
  test('an effect the order service refuses waits on a slow timer with NeedsAttention, and retryStep ends the wait at once', async () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let refusals = 0;
    const acts = mockRefundActivities(world, {
      recordOrderRefund: async (input) => {
        if (refusals++ === 0) throw ApplicationFailure.nonRetryable('order is locked by an export', 'order_locked');
        return happy.recordOrderRefund(input);
      },
    });
    const result = await withRefundWorker(env, workflowBundle, acts, async (start) => {
      const handle = await start(refundInput('refused-effect'));
      // describe and query do not move the time-skipping clock: the 1-minute timer stays pending
      await until(async () => (await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey) === true);
      assert.equal(refusals, 1);
      // nothing is waiting for an operator decision in the refund's own vocabulary
      assert.equal((await handle.query(refundStateQuery)).status, 'APPLYING_EFFECTS');
      await handle.signal(retryStepSignal, { by: 'ops-anna', reason: 'export finished' });
      await until(async () => refusals === 2);
      const state = await stateWhen(handle, (s) => s.status === 'SUCCEEDED');
      assert.equal(state.effects.orderStatus, 'PARTIALLY_REFUNDED');
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), false);
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
  });

  test('retryStep while no step waits is ignored', async () => {
    const world = largeWorld();
    const result = await withRefundWorker(env, workflowBundle, mockRefundActivities(world), async (start) => {
      const handle = await start(refundInput('retry-nothing', { amount: LARGE }));
      await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
      await handle.signal(retryStepSignal, { by: 'ops-x', reason: 'nothing to retry' });
      assert.equal((await handle.query(refundStateQuery)).status, 'AWAITING_APPROVAL');
      await handle.signal(approveRefundSignal, { by: 'ops-anna', reason: 'ok' });
      return handle.result();
    });
    assert.equal(result.status, 'SUCCEEDED');
  });
});

/** Polls (in real time, without moving the time-skipping clock) until `ready` holds. */
async function until(ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}
