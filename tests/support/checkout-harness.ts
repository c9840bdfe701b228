// What the checkout workflow tests share: a time-skipping test server with the search attributes
// registered, a worker around mocked activities, and the mocks themselves: plain functions that
// record every call, answer like the services would on a good day, and can be replaced one by one.
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundle } from '@temporalio/worker';
import type { CheckoutActivities, RefundActivities } from '../../activities/index.ts';
import { refundChildActivities } from '../../activities/refund-child.ts';
import { loadConfig } from '../../lib/config.ts';
import { checkoutWorkflowId, type CheckoutInput, type CheckoutResult, type PaymentMethod } from '../../shared/checkout.ts';
import { createCheckoutWorker } from '../../workers/checkout-worker.ts';
import type { checkout } from '../../workflows/checkout.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import type { PaymentStatus } from '../../shared/payments.ts';
import { refundWorkflowId, type RefundInput, type RefundState, type RefundStatus } from '../../shared/refunds.ts';
import { SEARCH_ATTRIBUTE_KEYS } from '../../shared/search-attributes.ts';
import type { FakeRefundActivities } from '../fixtures/workflows/fake-refund.ts';
import { testDataConverter } from './payload-keys.ts';

/** The real checkout and reconciliation workflows, with a stand-in Refund workflow answering through `fakeRefund`. */
export const WORKFLOWS_WITH_FAKE_REFUND_PATH = fileURLToPath(new URL('../fixtures/workflows/fake-refund.ts', import.meta.url));

export const TEMPORAL_TEST_SERVER = new URL('../../.tools/bin/temporal-test-server', import.meta.url).pathname;

/** Its client encrypts with the test key ring, as every worker of these tests does (tests/support/payload-keys.ts). */
export async function startTestServer(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEMPORAL_TEST_SERVER } },
    client: { dataConverter: testDataConverter() },
  });
  await registerSearchAttributes(env);
  return env;
}

/** The workflow upserts these at every step; an unregistered one would stall it, as on a real cluster. */
async function registerSearchAttributes(env: TestWorkflowEnvironment): Promise<void> {
  const searchAttributes = Object.fromEntries(
    SEARCH_ATTRIBUTE_KEYS.map(({ name, type }) => [name, proto.temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${type}`]]),
  );
  await env.connection.operatorService.addSearchAttributes({ namespace: env.namespace ?? 'default', searchAttributes });
}

/** What the checkout calls (the Refund workflow's own activities are the stand-in's business). */
export type MockedActivities = Omit<CheckoutActivities, keyof RefundActivities> & FakeRefundActivities;

export interface RecordedCall {
  name: keyof MockedActivities;
  /** `idempotencyKey` is absent on `syncPayment`, which asks afresh each time. */
  input: { idempotencyKey?: string; [field: string]: unknown };
}

export type MockActivities = MockedActivities & { calls: RecordedCall[]; provider: MockProvider };

export const COUPON_DISCOUNT_MINOR = 500;

/**
 * The provider as the mocks see it: authorize and capture answer "pending", and the next
 * `syncPayment` finds them decided (approved, captured), like a provider that decides quickly.
 */
export interface MockProvider {
  status: PaymentStatus | null;
  amountMinor: number;
  capturedMinor: number;
  refundedMinor: number;
}

export function mockActivities(overrides: Partial<MockedActivities> = {}): MockActivities {
  const provider: MockProvider = { status: null, amountMinor: 0, capturedMinor: 0, refundedMinor: 0 };
  const snapshot = (orderId: string) => ({
    paymentId: `pay-${orderId}`,
    status: provider.status ?? 'VOIDED',
    amountMinor: provider.amountMinor,
    capturedMinor: provider.capturedMinor,
    refundedMinor: provider.refundedMinor,
    declineCode: null,
  });
  const happy: MockedActivities = {
    createOrder: async ({ orderId, lines }) => ({
      orderId,
      // stands in for the orders service, which prices from the catalogue; the quote is its price here
      subtotalMinor: lines.reduce((sum, l) => sum + l.quantity * (l.unitPriceMinor ?? 0), 0),
    }),
    cancelOrder: async () => ({ cancelled: true }),
    markAwaitingPayment: async () => ({ totalMinor: 0 }),
    markOrderPaid: async () => {},
    reserveStock: async () => {},
    releaseStock: async () => {},
    commitStock: async () => {},
    lockCoupon: async () => ({ discountMinor: COUPON_DISCOUNT_MINOR }),
    unlockCoupon: async () => {},
    redeemCoupon: async () => {},
    authorizePayment: async ({ orderId, amountMinor }) => {
      provider.amountMinor = amountMinor;
      provider.status ??= 'AUTHORIZATION_PENDING';
      return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
    },
    syncPayment: async ({ orderId }) => {
      if (provider.status === 'AUTHORIZATION_PENDING') provider.status = 'AUTHORIZED';
      if (provider.status === 'CAPTURE_PENDING') {
        provider.status = 'CAPTURED';
        provider.capturedMinor = provider.amountMinor;
      }
      return snapshot(orderId);
    },
    voidPayment: async () => {
      if (provider.status === 'CAPTURE_PENDING' || provider.status === 'CAPTURED') return { outcome: 'captured' };
      if (provider.status !== 'DECLINED') provider.status = 'VOIDED';
      return { outcome: 'released' };
    },
    capturePayment: async () => {
      if (provider.status === 'AUTHORIZED') provider.status = 'CAPTURE_PENDING';
      return { status: provider.status ?? 'VOIDED', capturedMinor: provider.capturedMinor };
    },
    // The stand-in Refund workflow: gives back what is asked (all of what is held, for 'full').
    fakeRefund: async (input) => {
      const held = provider.capturedMinor - provider.refundedMinor;
      const amountMinor = input.amount === 'full' ? held : Math.min(input.amount, held);
      provider.refundedMinor += amountMinor;
      if (provider.refundedMinor >= provider.capturedMinor) provider.status = 'REFUNDED';
      return refundState(input, amountMinor, 'SUCCEEDED');
    },
    readRefundWorkflow: refundChildActivities().readRefundWorkflow,
    awardLoyaltyPoints: async ({ amountMinor }) => ({ points: Math.floor(amountMinor / 100) }),
  };
  const calls: RecordedCall[] = [];
  const recorded = Object.fromEntries(
    (Object.keys(happy) as (keyof MockedActivities)[]).map((name) => {
      const impl = (overrides[name] ?? happy[name]) as unknown as (input: RecordedCall['input']) => Promise<unknown>;
      const fn = async (input: RecordedCall['input']) => {
        calls.push({ name, input });
        return impl(input);
      };
      return [name, fn];
    }),
  ) as unknown as MockedActivities;
  return Object.assign(recorded, { calls, provider });
}

/** The final state the stand-in Refund workflow answers. */
export function refundState(input: RefundInput, amountMinor: number, status: RefundStatus, failure: string | null = null): RefundState {
  return {
    refundId: refundWorkflowId(input.requestId),
    requestId: input.requestId,
    orderId: input.orderId,
    status,
    amountMinor,
    currency: 'EUR',
    reason: input.reason,
    requestedBy: input.requestedBy,
    approval: input.preApproved ? { decision: 'not_required', ...input.preApproved } : null,
    escalated: false,
    provider: { status: status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED', failureReason: failure, attempts: 1 },
    manualReference: null,
    effects: { restocked: false, pointsReversed: 0, couponReturned: false, orderStatus: null },
    failure,
  };
}

/** The token the mocked activities are paid with: these tests never reach a provider, so it need not exist. */
export const TEST_PAYMENT_METHOD: PaymentMethod = { token: 'pm_testVisa4242', brand: 'visa', last4: '4242' };

export function checkoutInput(checkoutKey: string, extra: Partial<CheckoutInput> = {}): CheckoutInput {
  return {
    checkoutKey,
    customerId: 'cust-1',
    currency: 'EUR',
    lines: [
      { sku: 'SKU-MUG', quantity: 2, unitPriceMinor: 1250 },
      { sku: 'SKU-TEE', quantity: 1, unitPriceMinor: 2000 },
    ],
    couponCode: 'WELCOME5',
    paymentMethod: TEST_PAYMENT_METHOD,
    ...extra,
  };
}

/**
 * "Paid after our timeout": the provider keeps the authorization pending, refuses the void
 * (it can no longer stop it) and approves it afterwards.
 */
export function lateApproval(acts: MockActivities): MockActivities {
  let voidRefused = false;
  const checks = acts.syncPayment;
  acts.voidPayment = async (input) => {
    acts.calls.push({ name: 'voidPayment', input: { ...input } });
    voidRefused = true;
    return { outcome: 'processing' };
  };
  acts.syncPayment = async (input) => {
    // the default mock provider approves a pending authorization at the first check: hold it until the void came
    if (acts.provider.status === 'AUTHORIZATION_PENDING' && !voidRefused) {
      acts.calls.push({ name: 'syncPayment', input: { ...input } });
      return { paymentId: `pay-${input.orderId}`, status: 'AUTHORIZATION_PENDING', amountMinor: acts.provider.amountMinor,
        capturedMinor: 0, refundedMinor: 0, declineCode: null };
    }
    return checks(input);
  };
  return acts;
}

export const declined = () =>
  ApplicationFailure.nonRetryable('Card declined', BusinessFailure.PaymentDeclined, { declineCode: 'card_declined' });
export const outOfStock = () =>
  ApplicationFailure.nonRetryable('Not enough stock for SKU-MUG', BusinessFailure.OutOfStock, { sku: 'SKU-MUG' });

let run = 0;

/** Runs one checkout to its end on a worker of its own, `during` acting on it while it runs. */
export async function runCheckout(
  env: TestWorkflowEnvironment,
  workflowBundle: WorkflowBundle,
  activities: MockActivities,
  input: CheckoutInput,
  during?: (handle: WorkflowHandle<typeof checkout>) => Promise<void>,
): Promise<{ result: CheckoutResult; handle: WorkflowHandle<typeof checkout> }> {
  const taskQueue = `checkout-test-${process.pid}-${++run}`;
  const worker = await createCheckoutWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    dataConverter: testDataConverter(),
    serviceUrls: loadConfig().serviceUrls,
    workflowBundle,
    activities,
  });
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof checkout>('checkout', {
      args: [input],
      taskQueue,
      workflowId: checkoutWorkflowId(input.checkoutKey),
    });
    await during?.(handle);
    return { result: await handle.result(), handle };
  });
}

/** Holds an activity open until the test lets it answer. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}
