// The checkout workflow against mocked activities on the time-skipping test server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { cancelCheckoutSignal, checkoutStateQuery, checkoutWorkflowId, type CheckoutInput, type CheckoutResult } from '../../shared/checkout.ts';
import { retryStepSignal } from '../../shared/operations.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  CustomerIdKey,
  DEFAULT_REGION,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import type { checkout } from '../../workflows/checkout.ts';
import {
  checkoutInput, declined, gate, mockActivities, outOfStock, runCheckout as runTestCheckout, startTestServer, TEST_PAYMENT_METHOD, until,
  WORKFLOWS_WITH_FAKE_REFUND_PATH, type MockActivities,
} from '../support/checkout-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { historyText, keyIdOf, payloadsIn } from '../support/payload-keys.ts';

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;

/**
 * For tests that leave an activity running after the workflow has finished (cancelled while in
 * flight): the test server then keeps time skipping locked, which would slow every later test.
 */
async function withOwnTestServer<T>(fn: (testEnv: TestWorkflowEnvironment) => Promise<T>): Promise<T> {
  const testEnv = await startTestServer();
  try {
    return await fn(testEnv);
  } finally {
    await testEnv.teardown();
  }
}

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') });
});
after(async () => {
  await env?.teardown();
});

async function runCheckout(
  activities: MockActivities,
  input: CheckoutInput,
  during?: (handle: WorkflowHandle<typeof checkout>) => Promise<void>,
  testEnv: TestWorkflowEnvironment = env,
): Promise<CheckoutResult> {
  return (await runTestCheckout(testEnv, workflowBundle, activities, input, during)).result;
}

const names = (acts: MockActivities) => acts.calls.map((c) => c.name);
const callsTo = (acts: MockActivities, name: keyof MockActivities) => acts.calls.filter((c) => c.name === name);
/** The calls made after the first call to `name`: the compensations, when `name` is the step that failed. */
const namesAfter = (acts: MockActivities, name: string) => names(acts).slice(names(acts).indexOf(name as never) + 1);

const HAPPY_STEPS = [
  'createOrder', 'reserveStock', 'lockCoupon', 'markAwaitingPayment', 'authorizePayment', 'syncPayment',
  'capturePayment', 'syncPayment', 'commitStock', 'markOrderPaid', 'redeemCoupon', 'awardLoyaltyPoints',
];
const ALL_COMPENSATIONS = ['voidPayment', 'unlockCoupon', 'releaseStock', 'cancelOrder'];

describe('checkout workflow', () => {
  test('happy path runs every step once, in order, with stable keys, and ends PAID', async () => {
    const acts = mockActivities();
    const input = checkoutInput('happy-1');
    const workflowId = checkoutWorkflowId(input.checkoutKey);
    const result = await runCheckout(acts, input);

    assert.deepEqual(names(acts), HAPPY_STEPS);
    assert.deepEqual(
      acts.calls.filter((c) => c.name !== 'syncPayment').map((c) => c.input.idempotencyKey),
      ['create-order', 'reserve-stock', 'lock-coupon', 'await-payment', 'authorize-payment', 'capture-payment',
        'commit-stock', 'pay-order', 'redeem-coupon', 'award-loyalty'].map((step) => `${workflowId}:${step}`),
    );
    assert.equal(result.status, 'PAID');
    assert.equal(result.step, 'DONE');
    assert.equal(result.orderStatus, 'PAID');
    assert.equal(result.subtotalMinor, 4500);
    assert.equal(result.discountMinor, 500);
    assert.equal(result.totalMinor, 4000);
    assert.equal(result.capturedMinor, 4000);
    assert.equal(result.payment.status, 'CAPTURED');
    assert.equal(result.payment.source, 'active_query', 'no notification came: the checkout asked on its own');
    assert.equal(result.payment.checks, 2);
    assert.equal(result.paymentId, `pay-${result.orderId}`);
    assert.equal(result.cancelReason, null);
    assert.deepEqual(result.compensations, [], 'nothing is left to undo once the money is taken');
    assert.equal(callsTo(acts, 'authorizePayment')[0]?.input.amountMinor, 4000);
    assert.deepEqual(callsTo(acts, 'authorizePayment')[0]?.input.paymentMethod, TEST_PAYMENT_METHOD, 'the token, brand and last4: never a number');
    assert.deepEqual(callsTo(acts, 'markAwaitingPayment')[0]?.input, {
      idempotencyKey: `${workflowId}:await-payment`, orderId: result.orderId, discountMinor: 500, couponCode: 'WELCOME5',
    });
    assert.equal(callsTo(acts, 'markOrderPaid')[0]?.input.paymentId, result.paymentId);
    assert.equal(callsTo(acts, 'awardLoyaltyPoints')[0]?.input.amountMinor, 4000);

    const attributes = (await env.client.workflow.getHandle(workflowId).describe()).typedSearchAttributes;
    assert.equal(attributes.get(FlowStatusKey), 'PAID');
    assert.equal(attributes.get(CheckoutStepKey), 'DONE');
    assert.equal(attributes.get(OrderIdKey), result.orderId);
    assert.equal(attributes.get(AmountMinorKey), 4000);
    assert.equal(attributes.get(CurrencyKey), 'EUR');
    assert.equal(attributes.get(CustomerIdKey), 'cust-1');
    assert.equal(attributes.get(RegionKey), DEFAULT_REGION, 'a checkout that names no region is in the default one');
    assert.equal(attributes.get(NeedsAttentionKey), false);
  });

  test('the region the request names is the run\'s Region', async () => {
    const input = checkoutInput('region-us', { region: 'us' });
    await runCheckout(mockActivities(), input);
    const attributes = (await env.client.workflow.getHandle(checkoutWorkflowId(input.checkoutKey)).describe()).typedSearchAttributes;
    assert.equal(attributes.get(RegionKey), 'us');
  });

  test('without a coupon there is no lock, no redeem and no discount', async () => {
    const acts = mockActivities();
    const result = await runCheckout(acts, checkoutInput('no-coupon-1', { couponCode: undefined }));
    assert.deepEqual(names(acts), HAPPY_STEPS.filter((n) => n !== 'lockCoupon' && n !== 'redeemCoupon'));
    assert.equal(result.totalMinor, 4500);
    assert.equal(result.status, 'PAID');
  });

  test('declined card voids, unlocks the coupon, releases stock and cancels the order, newest first', async () => {
    const acts = mockActivities({ authorizePayment: async () => { throw declined(); } });
    const input = checkoutInput('decline-1');
    const result = await runCheckout(acts, input);

    assert.equal(result.status, 'CANCELLED');
    assert.match(result.cancelReason ?? '', /^PaymentDeclined: Card declined/);
    assert.equal(callsTo(acts, 'authorizePayment').length, 1, 'a decline is not retried');
    assert.deepEqual(namesAfter(acts, 'authorizePayment'), ALL_COMPENSATIONS);
    assert.equal(callsTo(acts, 'cancelOrder')[0]?.input.reason, result.cancelReason);
    assert.equal(callsTo(acts, 'voidPayment')[0]?.input.idempotencyKey, `${checkoutWorkflowId(input.checkoutKey)}:void-payment`);
    assert.equal(result.orderStatus, 'CANCELLED');
    assert.deepEqual(result.compensations, [
      { name: 'cancelOrder', status: 'DONE' }, { name: 'releaseStock', status: 'DONE' },
      { name: 'unlockCoupon', status: 'DONE' }, { name: 'voidPayment', status: 'DONE' },
    ]);
  });

  test('out of stock releases stock and cancels the order, and touches neither coupon nor payment', async () => {
    const acts = mockActivities({ reserveStock: async () => { throw outOfStock(); } });
    const result = await runCheckout(acts, checkoutInput('oos-1'));

    assert.equal(result.status, 'CANCELLED');
    assert.match(result.cancelReason ?? '', /^OutOfStock:/);
    assert.deepEqual(names(acts), ['createOrder', 'reserveStock', 'releaseStock', 'cancelOrder']);
  });

  test('a payment the provider has not decided yet shows as AWAITING_PAYMENT in the query and the Web UI', async () => {
    const acts = mockActivities();
    const result = await runCheckout(acts, checkoutInput('awaiting-1'), async (handle) => {
      // the first look at the provider waits on a timer, which stands still until the result is awaited
      const deadline = Date.now() + 10_000;
      let state = await handle.query(checkoutStateQuery);
      while (state.step !== 'AWAITING_PAYMENT') {
        assert.ok(Date.now() < deadline, `never AWAITING_PAYMENT: ${state.step}`);
        await new Promise((r) => setTimeout(r, 20));
        state = await handle.query(checkoutStateQuery);
      }
      assert.ok(state.payment.deadline, 'the deadline for the decision is shown');
      const attributes = (await handle.describe()).typedSearchAttributes;
      assert.equal(attributes.get(CheckoutStepKey), 'AWAITING_PAYMENT');
      assert.equal(attributes.get(NeedsAttentionKey), false, 'waiting for the provider needs nobody yet');
    });
    assert.equal(result.status, 'PAID');
  });

  test('state query answers mid-flight with step, amounts and pending compensations', async () => {
    const authorizing = gate();
    const acts: MockActivities = mockActivities({ authorizePayment: async ({ orderId }) => {
      await authorizing.opened;
      acts.provider.status = 'AUTHORIZED';
      return { paymentId: `pay-${orderId}`, status: 'AUTHORIZED' };
    } });
    const result = await runCheckout(acts, checkoutInput('query-1'), async (handle) => {
      await until(() => names(acts).includes('authorizePayment'));
      const state = await handle.query(checkoutStateQuery);
      assert.equal(state.status, 'RUNNING');
      assert.equal(state.step, 'AUTHORIZING_PAYMENT');
      assert.equal(state.orderStatus, 'AWAITING_PAYMENT');
      assert.deepEqual([state.subtotalMinor, state.discountMinor, state.totalMinor], [4500, 500, 4000]);
      assert.equal(state.paymentId, null);
      assert.equal(state.payment.status, null);
      assert.ok(state.payment.deadline, 'the payment deadline is shown while the authorization is undecided');
      assert.deepEqual(state.compensations.map((c) => `${c.name}:${c.status}`),
        ['cancelOrder:PENDING', 'releaseStock:PENDING', 'unlockCoupon:PENDING', 'voidPayment:PENDING']);
      authorizing.open();
    });
    assert.equal(result.status, 'PAID');
  });

  test('cancel signal before capture compensates everything, even the authorization still in flight', async () => {
    const authorizing = gate();
    const acts = mockActivities({ authorizePayment: async ({ orderId }) => {
      await authorizing.opened;
      return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
    } });
    const result = await withOwnTestServer((testEnv) =>
      runCheckout(acts, checkoutInput('cancel-before-1'), async (handle) => {
        await until(() => names(acts).includes('authorizePayment'));
        await handle.signal(cancelCheckoutSignal, { reason: 'customer changed their mind' });
        await until(() => names(acts).includes('cancelOrder'));
        authorizing.open(); // answers late: the workflow has moved on, the services refuse a late authorize
      }, testEnv),
    );

    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.cancelReason, 'customer changed their mind');
    assert.deepEqual(namesAfter(acts, 'authorizePayment'), ALL_COMPENSATIONS);
    assert.equal(callsTo(acts, 'capturePayment').length, 0);
    assert.equal(callsTo(acts, 'cancelOrder')[0]?.input.reason, 'customer changed their mind');
  });

  test('cancel signal after capture started is ignored and the checkout ends PAID', async () => {
    const capturing = gate();
    const acts: MockActivities = mockActivities({ capturePayment: async () => {
      await capturing.opened;
      acts.provider.status = 'CAPTURED';
      acts.provider.capturedMinor = 4000;
      return { status: 'CAPTURED', capturedMinor: 4000 };
    } });
    const result = await runCheckout(acts, checkoutInput('cancel-after-1'), async (handle) => {
      await until(() => names(acts).includes('capturePayment'));
      await handle.signal(cancelCheckoutSignal, { reason: 'too late' });
      capturing.open();
    });

    assert.equal(result.status, 'PAID');
    assert.equal(result.cancelReason, null);
    const withoutCaptureCheck = HAPPY_STEPS.filter((_, i) => i !== HAPPY_STEPS.lastIndexOf('syncPayment'));
    assert.deepEqual(names(acts), withoutCaptureCheck, 'the capture answered CAPTURED itself: nothing to check');
  });

  test('cancel signal while a reservation took effect but never answered still releases it', async () => {
    const reserving = gate();
    const acts = mockActivities({ reserveStock: async () => { await reserving.opened; } });
    const result = await withOwnTestServer((testEnv) =>
      runCheckout(acts, checkoutInput('cancel-hanging-1'), async (handle) => {
        await until(() => names(acts).includes('reserveStock'));
        await handle.signal(cancelCheckoutSignal, { reason: 'customer left' });
        await until(() => names(acts).includes('cancelOrder'));
        reserving.open();
      }, testEnv),
    );

    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(names(acts), ['createOrder', 'reserveStock', 'releaseStock', 'cancelOrder']);
  });

  test('a reservation that took effect and then timed out is retried with the same key and compensated', async () => {
    const acts = mockActivities({
      reserveStock: async () => {
        // Takes effect (the call is recorded), then answers after the 10 s startToCloseTimeout.
        if (Context.current().info.attempt === 1) await Context.current().sleep(11_000);
      },
      authorizePayment: async () => { throw declined(); },
    });
    const result = await runCheckout(acts, checkoutInput('timeout-1'));

    const reserves = callsTo(acts, 'reserveStock');
    assert.equal(reserves.length, 2);
    assert.equal(reserves[0]?.input.idempotencyKey, reserves[1]?.input.idempotencyKey);
    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(namesAfter(acts, 'authorizePayment'), ALL_COMPENSATIONS);
  });

  test('compensations that fail transiently are retried until they succeed', async () => {
    let releaseAttempts = 0;
    let voidAttempts = 0;
    const acts = mockActivities({
      authorizePayment: async () => { throw declined(); },
      voidPayment: async () => {
        if (++voidAttempts < 3) throw new Error('payments service answered 503');
        return { outcome: 'released' };
      },
      releaseStock: async () => { if (++releaseAttempts < 4) throw new Error('inventory service timed out'); },
    });
    const result = await runCheckout(acts, checkoutInput('flaky-undo-1'));

    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(namesAfter(acts, 'authorizePayment'), [
      'voidPayment', 'voidPayment', 'voidPayment', 'unlockCoupon',
      'releaseStock', 'releaseStock', 'releaseStock', 'releaseStock', 'cancelOrder',
    ]);
    assert.ok(result.compensations.every((c) => c.status === 'DONE'));
  });

  test('a payment provider that stays unavailable gives up after bounded attempts and compensates', async () => {
    const acts = mockActivities({ authorizePayment: async () => { throw new Error('payments service answered 503 psp_unavailable'); } });
    const result = await runCheckout(acts, checkoutInput('psp-down-1'));

    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.cancelReason, 'payment provider unavailable');
    assert.equal(callsTo(acts, 'authorizePayment').length, 4);
    assert.deepEqual(namesAfter(acts, 'authorizePayment').filter((n) => n !== 'authorizePayment'), ALL_COMPENSATIONS);
  });

  test('a capture the provider never settles stalls: it asks at most hourly, needs attention, and retryStep asks now', async () => {
    let settles = false;
    const acts = mockActivities();
    const checks = acts.syncPayment;
    acts.syncPayment = async (input) => {
      if (acts.provider.status === 'CAPTURE_PENDING' && !settles) {
        acts.calls.push({ name: 'syncPayment', input: { ...input } });
        return { paymentId: `pay-${input.orderId}`, status: 'CAPTURE_PENDING', amountMinor: acts.provider.amountMinor,
          capturedMinor: 0, refundedMinor: 0, declineCode: null };
      }
      return checks(input);
    };
    const result = await runCheckout(acts, checkoutInput('stalled-capture-1'), async (handle) => {
      await until(() => acts.provider.status === 'CAPTURE_PENDING');
      await env.sleep('6 hours');
      const state = await handle.query(checkoutStateQuery);
      assert.equal(state.step, 'CAPTURING_PAYMENT');
      assert.equal(state.payment.status, 'CAPTURE_PENDING');
      // 1 check for the authorization; 22 for the capture in its first 10 min (3 s doubling to
      // 30 s); then 60 s doubling to 1 h: 10 more by 6 h. Every 30 s it would have been ~730.
      assert.ok(state.payment.checks < 40, `${state.payment.checks} checks in 6 hours`);
      assert.ok(state.payment.checks > 20, `${state.payment.checks} checks: it kept asking`);
      assert.equal((await handle.describe()).typedSearchAttributes.get(NeedsAttentionKey), true, 'a stalled capture needs an operator');
      const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(currentDetails ?? '', /the provider has not settled the payment since \d{4}-\d\d-\d\dT/);

      acts.provider.status = 'CAPTURED';
      acts.provider.capturedMinor = acts.provider.amountMinor;
      settles = true;
      await handle.signal(retryStepSignal, { by: 'ops-anna', reason: 'provider says it is captured' });
      // the clock stands still while the test only signals and queries: the retry itself asked
      const stop = Date.now() + 10_000;
      while (!names(acts).includes('markOrderPaid')) {
        assert.ok(Date.now() < stop, 'retryStep did not make the checkout ask the provider');
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    assert.equal(result.status, 'PAID');
    assert.equal(result.capturedMinor, 4000);
    const attributes = (await env.client.workflow.getHandle(result.checkoutId).describe()).typedSearchAttributes;
    assert.equal(attributes.get(NeedsAttentionKey), false, 'settled: nobody is needed any more');
  });

  test('after capture, a refused fulfilment step is retried until it goes through', async () => {
    let commits = 0;
    const acts = mockActivities({
      commitStock: async () => {
        if (++commits === 1) throw ApplicationFailure.nonRetryable('reservation is busy', 'IllegalTransition');
      },
    });
    const result = await runCheckout(acts, checkoutInput('refused-commit-1'));

    assert.equal(result.status, 'PAID');
    assert.equal(commits, 2);
    assert.equal(callsTo(acts, 'voidPayment').length, 0, 'money was taken: never compensate after capture');
  });
});

describe('what Temporal stores of a checkout', () => {
  test('the raw history holds nothing of the input, the results or the failure messages in plaintext: every payload is encrypted', async () => {
    const acts = mockActivities({ authorizePayment: async () => { throw declined(); } });
    const input = checkoutInput('encrypted-1', { customerId: 'cust-ada-7f3c' });
    const result = await runCheckout(acts, input);
    assert.match(result.cancelReason ?? '', /Card declined/, 'worker and client, holding the key, read everything');

    // as the cluster (its database, the Web UI without the codec server) sees it
    const raw = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
    const history = await raw.workflow.getHandle(checkoutWorkflowId(input.checkoutKey)).fetchHistory();
    const payloads = payloadsIn(history);
    assert.ok(payloads.some((p) => p.eventId === 1), 'the start input is among them');
    for (const { path, payload } of payloads) assert.equal(keyIdOf(payload), 'test-a', path);
    // search attributes (CustomerId among them) are plaintext by design and left out of this search
    const text = historyText(history);
    const plaintext = [input.customerId, input.couponCode!, ...input.lines.map((l) => l.sku), input.paymentMethod.token, 'Card declined'];
    for (const secret of plaintext) assert.ok(!text.includes(secret), `"${secret}" is in the raw history in plaintext`);
  });
});
