// The checkout against an asynchronous provider (mocked activities, time-skipping server):
// notifications only prompt a check, the provider's answer decides, and whatever the order of
// events a cancelled checkout never ends with a capture standing (a capture it cannot keep is
// given back by a Refund workflow, here a stand-in: tests/fixtures/workflows/fake-refund.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type WorkflowBundle } from '@temporalio/worker';
import type { PaymentSnapshot } from '../../activities/index.ts';
import { cancelCheckoutSignal, checkoutStateQuery, checkoutWorkflowId, type CheckoutInput, type CheckoutResult } from '../../shared/checkout.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { paymentEventSignal, type PaymentEvent, type PaymentStatus, type PspEventType } from '../../shared/payments.ts';
import { refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { CurrencyKey, CustomerIdKey, DEFAULT_REGION, RegionKey } from '../../shared/search-attributes.ts';
import type { checkout } from '../../workflows/checkout.ts';
import {
  checkoutInput, gate, lateApproval, mockActivities, refundState, runCheckout as runTestCheckout, startTestServer, until,
  WORKFLOWS_WITH_FAKE_REFUND_PATH, type MockActivities,
} from '../support/checkout-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';

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

async function runCheckout(
  activities: MockActivities,
  input: CheckoutInput,
  during?: (handle: WorkflowHandle<typeof checkout>) => Promise<void>,
): Promise<CheckoutResult> {
  return (await runTestCheckout(env, workflowBundle, activities, input, during)).result;
}

const names = (acts: MockActivities) => acts.calls.map((c) => c.name);
const callsTo = (acts: MockActivities, name: keyof MockActivities) => acts.calls.filter((c) => c.name === name);
const count = (acts: MockActivities, name: keyof MockActivities) => callsTo(acts, name).length;

let eventCounter = 0;
function event(input: CheckoutInput, type: PspEventType, eventId = `evt_${++eventCounter}`): PaymentEvent {
  return { eventId, type, pspPaymentId: 'psp_1', orderId: `order-${input.checkoutKey}` };
}

/** A provider that answers `statuses` to successive checks, then keeps answering the last one. */
function scriptedChecks(acts: () => MockActivities, statuses: PaymentStatus[], extra: Partial<PaymentSnapshot> = {}) {
  let call = 0;
  return async ({ orderId }: { orderId: string }): Promise<PaymentSnapshot> => {
    const status = statuses[Math.min(call++, statuses.length - 1)]!;
    const provider = acts().provider;
    provider.status = status;
    if (status === 'CAPTURED') provider.capturedMinor = provider.amountMinor;
    return {
      paymentId: `pay-${orderId}`, status, amountMinor: provider.amountMinor, capturedMinor: provider.capturedMinor,
      refundedMinor: provider.refundedMinor, declineCode: null, ...extra,
    };
  };
}

/**
 * The invariant behind "no money lost": a checkout that ends CANCELLED has no capture standing —
 * either nothing was captured, or all of it was refunded.
 */
function assertNoCaptureStanding(acts: MockActivities, result: CheckoutResult) {
  if (result.status !== 'CANCELLED') return;
  const { capturedMinor, refundedMinor } = acts.provider;
  assert.equal(refundedMinor, capturedMinor, `cancelled with ${capturedMinor} captured and only ${refundedMinor} refunded`);
}

/** The reservation went while the payment was still being decided. */
const stockGone = async () => {
  throw ApplicationFailure.nonRetryable('reservation was released', BusinessFailure.AlreadyCompensated, { code: 'reservation_released' });
};

const SHORT = { paymentDeadlineMs: 60_000, firstPaymentCheckMs: 3_000, maxPaymentCheckIntervalMs: 30_000 };

describe('checkout with asynchronous payment notifications', () => {
  test('a notification cuts the wait short and the provider confirms the outcome', async () => {
    const authorizing = gate();
    const capturing = gate();
    const acts: MockActivities = mockActivities({
      authorizePayment: async ({ orderId, amountMinor }) => {
        await authorizing.opened;
        acts.provider.amountMinor = amountMinor;
        acts.provider.status = 'AUTHORIZATION_PENDING';
        return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
      },
      capturePayment: async () => {
        await capturing.opened;
        acts.provider.status = 'CAPTURE_PENDING';
        return { status: 'CAPTURE_PENDING', capturedMinor: 0 };
      },
    });
    const input = checkoutInput('notified-1');
    const result = await runCheckout(acts, input, async (handle) => {
      // Each notification lands while the call is still out, so it is waiting when the checkout starts to wait.
      await until(() => names(acts).includes('authorizePayment'));
      await handle.signal(paymentEventSignal, event(input, 'payment.authorized'));
      authorizing.open();
      await until(() => names(acts).includes('capturePayment'));
      await handle.signal(paymentEventSignal, event(input, 'payment.captured'));
      capturing.open();
    });

    assert.equal(result.status, 'PAID');
    assert.equal(result.payment.source, 'signal');
    assert.equal(result.payment.eventsReceived, 2);
    assert.equal(count(acts, 'syncPayment'), 2, 'each notification is confirmed by asking the provider');
    assert.equal(count(acts, 'capturePayment'), 1);
  });

  test('a notification is never trusted on its own: "declined" while the provider says authorized completes the order', async () => {
    const authorizing = gate();
    const acts: MockActivities = mockActivities({
      authorizePayment: async ({ orderId, amountMinor }) => {
        await authorizing.opened;
        acts.provider.amountMinor = amountMinor;
        acts.provider.status = 'AUTHORIZATION_PENDING';
        return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
      },
    });
    const input = checkoutInput('untrusted-1');
    const result = await runCheckout(acts, input, async (handle) => {
      await until(() => names(acts).includes('authorizePayment'));
      await handle.signal(paymentEventSignal, event(input, 'payment.declined'));
      authorizing.open();
    });
    assert.equal(result.status, 'PAID');
    assert.equal(count(acts, 'voidPayment'), 0);
    assert.equal(count(acts, 'capturePayment'), 1);
  });

  test('without any notification the checkout asks the provider itself, backing off, and completes', async () => {
    const checkedAt: number[] = [];
    const acts: MockActivities = mockActivities({});
    const scripted = scriptedChecks(() => acts, [
      'AUTHORIZATION_PENDING', 'AUTHORIZATION_PENDING', 'AUTHORIZATION_PENDING', 'AUTHORIZATION_PENDING', 'AUTHORIZED',
      'CAPTURED',
    ]);
    acts.syncPayment = async (input) => {
      acts.calls.push({ name: 'syncPayment', input: { ...input } });
      checkedAt.push(Context.current().info.scheduledTimestampMs);
      return scripted(input);
    };
    const result = await runCheckout(acts, checkoutInput('dropped-1'));

    assert.equal(result.status, 'PAID');
    assert.equal(result.payment.source, 'active_query');
    assert.equal(result.payment.eventsReceived, 0);
    assert.equal(count(acts, 'capturePayment'), 1);
    const gaps = checkedAt.slice(1, 5).map((t, i) => Math.round((t - checkedAt[i]!) / 1000));
    assert.deepEqual(gaps, [6, 12, 24, 30], 'the wait doubles from 3 s up to the 30 s cap');
  });

  test('duplicate and out-of-order notifications change nothing: one capture, the order completes', async () => {
    const authorizing = gate();
    const acts: MockActivities = mockActivities({
      authorizePayment: async ({ orderId, amountMinor }) => {
        await authorizing.opened;
        acts.provider.amountMinor = amountMinor;
        acts.provider.status = 'AUTHORIZATION_PENDING';
        return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
      },
    });
    const input = checkoutInput('reordered-1');
    const captured = event(input, 'payment.captured');
    const authorized = event(input, 'payment.authorized');
    const result = await runCheckout(acts, input, async (handle) => {
      await until(() => names(acts).includes('authorizePayment'));
      for (const e of [captured, captured, authorized, authorized, event(input, 'payment.declined')]) {
        await handle.signal(paymentEventSignal, e);
      }
      // and one for someone else's order
      await handle.signal(paymentEventSignal, { ...authorized, eventId: 'evt_other', orderId: 'order-someone-else' });
      authorizing.open();
    });

    assert.equal(result.status, 'PAID');
    assert.equal(result.payment.eventsReceived, 3, 'duplicates and other orders\' events are not counted');
    assert.equal(count(acts, 'capturePayment'), 1);
    assert.equal(count(acts, 'voidPayment'), 0);
  });

  test('a decline the provider confirms cancels the checkout with PaymentDeclined and undoes everything', async () => {
    const acts: MockActivities = mockActivities({});
    acts.syncPayment = scriptedChecks(() => acts, ['DECLINED'], { declineCode: 'insufficient_funds' });
    const result = await runCheckout(acts, checkoutInput('declined-async-1'));

    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.cancelReason, `${BusinessFailure.PaymentDeclined}: card declined (insufficient_funds)`);
    assert.deepEqual(names(acts).slice(names(acts).indexOf('authorizePayment') + 1),
      ['voidPayment', 'unlockCoupon', 'releaseStock', 'cancelOrder']);
    assert.equal(count(acts, 'capturePayment'), 0);
  });

  test('a payment still undecided at the deadline is voided and the checkout cancelled', async () => {
    const acts: MockActivities = mockActivities({});
    acts.syncPayment = scriptedChecks(() => acts, ['AUTHORIZATION_PENDING']);
    const result = await runCheckout(acts, checkoutInput('deadline-1', { timing: SHORT }));

    assert.equal(result.status, 'CANCELLED');
    assert.match(result.cancelReason ?? '', /not confirmed by the provider within 60 s/);
    assert.equal(count(acts, 'voidPayment'), 1);
    assert.equal(count(acts, 'capturePayment'), 0);
    assert.equal(acts.provider.status, 'VOIDED');
    assert.deepEqual(result.compensations.map((c) => `${c.name}:${c.status}`),
      ['cancelOrder:DONE', 'releaseStock:DONE', 'unlockCoupon:DONE', 'voidPayment:DONE']);
  });

  test('void refused while the provider is processing, then approved: the order completes with exactly one capture', async () => {
    const acts = lateApproval(mockActivities({}));
    const result = await runCheckout(acts, checkoutInput('late-approval-1', { timing: SHORT }));

    assert.equal(result.status, 'PAID', JSON.stringify(result));
    assert.equal(result.cancelReason, null);
    assert.equal(result.orderStatus, 'PAID');
    assert.equal(count(acts, 'voidPayment'), 1);
    assert.equal(count(acts, 'capturePayment'), 1);
    assert.equal(result.capturedMinor, 4000);
    for (const undo of ['releaseStock', 'unlockCoupon', 'cancelOrder', 'fakeRefund'] as const) {
      assert.equal(count(acts, undo), 0, `${undo} must not run: the sale stands`);
    }
    assert.deepEqual(names(acts).slice(-4), ['commitStock', 'markOrderPaid', 'redeemCoupon', 'awardLoyaltyPoints']);
  });

  test('approved after the deadline but the stock is gone: a Refund workflow gives the capture back and the checkout cancels', async () => {
    const acts = lateApproval(mockActivities({ commitStock: stockGone }));
    const input = checkoutInput('late-no-stock-1', { timing: SHORT });
    const { result, handle } = await runTestCheckout(env, workflowBundle, acts, input);

    assert.equal(result.status, 'CANCELLED');
    assert.match(result.cancelReason ?? '', /^OutOfStock: .*refunded/);
    assert.equal(count(acts, 'capturePayment'), 1);
    assert.equal(count(acts, 'markOrderPaid'), 0);
    assert.deepEqual(names(acts).slice(-4), ['fakeRefund', 'unlockCoupon', 'releaseStock', 'cancelOrder']);
    const [asked] = callsTo(acts, 'fakeRefund').map((c) => c.input as unknown as RefundInput);
    assert.deepEqual(asked, {
      requestId: 'late-no-stock-1-cancelled-checkout',
      orderId: result.orderId,
      amount: 'full',
      reason: result.cancelReason,
      restock: [],
      requestedBy: 'checkout',
      preApproved: { by: 'checkout', reason: result.cancelReason },
    });
    const refundId = refundWorkflowId('late-no-stock-1-cancelled-checkout');
    assert.deepEqual(result.refund, { workflowId: refundId, status: 'SUCCEEDED', amountMinor: 4000, failure: null });
    assert.equal(result.payment.refundedMinor, 4000);
    assertNoCaptureStanding(acts, result);
    assert.equal(acts.provider.status, 'REFUNDED');

    // the refund is the checkout's child, and outlives it
    const refund = await env.client.workflow.getHandle(refundId).describe();
    assert.equal(refund.type, 'refund');
    assert.equal(refund.parentExecution?.workflowId, handle.workflowId);
    assert.equal(refund.status.name, 'COMPLETED');
    // and is found beside it: the same customer, region and currency, and a summary of its own
    assert.equal(refund.typedSearchAttributes.get(CustomerIdKey), 'cust-1');
    assert.equal(refund.typedSearchAttributes.get(RegionKey), DEFAULT_REGION);
    assert.equal(refund.typedSearchAttributes.get(CurrencyKey), 'EUR');
    assert.ok((await refund.staticSummary())?.startsWith(`Refund in full of order ${result.orderId} · `));
  });

  test('a refund that ends without the money back is on the checkout\'s record, and the rest is still undone', async () => {
    const acts: MockActivities = lateApproval(mockActivities({
      commitStock: stockGone,
      fakeRefund: async (input) => refundState(input, 4000, 'ABANDONED', 'abandoned by ops: customer paid back by bank transfer'),
    }));
    const result = await runCheckout(acts, checkoutInput('late-refund-abandoned-1', { timing: SHORT }));

    assert.equal(result.status, 'CANCELLED');
    assert.deepEqual(result.refund, {
      workflowId: refundWorkflowId('late-refund-abandoned-1-cancelled-checkout'),
      status: 'ABANDONED',
      amountMinor: 4000,
      failure: 'abandoned by ops: customer paid back by bank transfer',
    });
    assert.equal(result.payment.refundedMinor, 0);
    assert.deepEqual(names(acts).slice(-4), ['fakeRefund', 'unlockCoupon', 'releaseStock', 'cancelOrder']);
    assert.ok(result.compensations.every((c) => c.status === 'DONE'));
  });

  test('while the refund runs the checkout\'s state shows it, and nothing else is undone before it ends', async () => {
    const refunding = gate();
    const acts: MockActivities = lateApproval(mockActivities({ commitStock: stockGone }));
    const giveBack = acts.fakeRefund;
    acts.fakeRefund = async (input) => {
      const answer = giveBack(input);
      await refunding.opened;
      return answer;
    };
    const input = checkoutInput('late-refund-slow-1', { timing: SHORT });
    const result = await runCheckout(acts, input, async (handle) => {
      // waiting on the result lets the test server skip the payment deadline meanwhile
      const finished = handle.result();
      await until(() => names(acts).includes('fakeRefund'));
      const state = await handle.query(checkoutStateQuery);
      assert.equal(state.step, 'COMPENSATING');
      assert.deepEqual(state.refund, { workflowId: refundWorkflowId('late-refund-slow-1-cancelled-checkout'), status: 'RUNNING', amountMinor: null, failure: null });
      assert.deepEqual(state.compensations.map((c) => `${c.name}:${c.status}`),
        ['cancelOrder:PENDING', 'releaseStock:PENDING', 'unlockCoupon:PENDING', 'refundPayment:PENDING']);
      refunding.open();
      await finished;
    });
    assert.equal(result.refund?.status, 'SUCCEEDED');
    assertNoCaptureStanding(acts, result);
  });

  test('the customer cancels while the provider cannot stop the payment: it is voided once approved, never captured', async () => {
    let voids = 0;
    const acts: MockActivities = mockActivities({
      voidPayment: async () => {
        if (++voids === 1) {
          acts.provider.status = 'AUTHORIZED'; // the provider approves it after refusing the void
          return { outcome: 'processing' };
        }
        acts.provider.status = 'VOIDED';
        return { outcome: 'released' };
      },
    });
    acts.syncPayment = async (input) => {
      acts.calls.push({ name: 'syncPayment', input: { ...input } });
      const provider = acts.provider;
      return { paymentId: `pay-${input.orderId}`, status: provider.status!, amountMinor: provider.amountMinor,
        capturedMinor: provider.capturedMinor, refundedMinor: provider.refundedMinor, declineCode: null };
    };
    const input = checkoutInput('cancel-processing-1', { timing: SHORT });
    const result = await runCheckout(acts, input, async (handle) => {
      await until(() => names(acts).includes('syncPayment'));
      await handle.signal(cancelCheckoutSignal, { reason: 'customer changed their mind' });
    });

    assert.equal(result.status, 'CANCELLED');
    assert.equal(result.cancelReason, 'customer changed their mind');
    assert.equal(count(acts, 'capturePayment'), 0);
    const workflowId = checkoutWorkflowId(input.checkoutKey);
    assert.deepEqual(callsTo(acts, 'voidPayment').map((c) => c.input.idempotencyKey),
      [`${workflowId}:void-payment`, `${workflowId}:void-payment-2`], 'a refused void is retried under a new key');
    assert.equal(acts.provider.status, 'VOIDED');
    assertNoCaptureStanding(acts, result);
  });

  test('a provider that is down for a while is asked again until it answers, and the checkout completes', async () => {
    let failures = 0;
    const acts: MockActivities = mockActivities({});
    const healthy = acts.syncPayment;
    acts.syncPayment = async (input) => {
      if (failures < 5) {
        failures += 1;
        acts.calls.push({ name: 'syncPayment', input: { ...input } });
        throw new Error('payments service answered 503 psp_unavailable');
      }
      return healthy(input);
    };
    const result = await runCheckout(acts, checkoutInput('psp-flaky-1'));

    assert.equal(result.status, 'PAID');
    assert.equal(failures, 5);
    assert.equal(count(acts, 'capturePayment'), 1);
    assert.equal(count(acts, 'voidPayment'), 0);
  });
});
