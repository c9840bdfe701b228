// What the Refund workflow tests share: mocked refund activities over a small in-memory world
// (one captured payment, its order, loyalty award and coupon) that answers like the services
// would, and a runner that starts one refund on a worker of its own.
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import type { ProviderRefund, RefundActivities } from '../../activities/refunds.ts';
import { refundStateQuery, refundWorkflowId, type RefundInput, type RefundState, type RestockLine } from '../../shared/refunds.ts';
import type { refund } from '../../workflows/refund.ts';
import { testDataConverter } from './payload-keys.ts';

export interface RefundWorld {
  orderId: string;
  currency: string;
  capturedMinor: number;
  /** Held by pending refunds plus refunded (succeeded or manual), as the payments service caps it. */
  heldMinor: number;
  order: { status: string; customerId: string; couponCode: string | null; totalMinor: number; refundedMinor: number; lines: RestockLine[] };
  awardedPoints: number;
  reversedPoints: number;
  couponStatus: 'REDEEMED' | 'AVAILABLE';
  onHand: Record<string, number>;
  /** What the provider decides for each attempt of a refund: true = succeed. */
  providerSucceeds: (refundId: string, attempt: number) => boolean;
  refunds: Map<string, { amountMinor: number; attempt: number; status: ProviderRefund['status']; failureReason: string | null }>;
  calls: { name: keyof RefundActivities; input: Record<string, unknown> }[];
}

export function refundWorld(extra: Partial<RefundWorld> = {}): RefundWorld {
  return {
    orderId: 'order-r1',
    currency: 'EUR',
    capturedMinor: 5000,
    heldMinor: 0,
    order: {
      status: 'PAID',
      customerId: 'cust-1',
      couponCode: 'WELCOME10',
      totalMinor: 5000,
      refundedMinor: 0,
      lines: [{ sku: 'MUG', quantity: 2 }, { sku: 'TEE', quantity: 1 }],
    },
    awardedPoints: 50,
    reversedPoints: 0,
    couponStatus: 'REDEEMED',
    onHand: { MUG: 10, TEE: 10 },
    providerSucceeds: () => true,
    refunds: new Map(),
    calls: [],
    ...extra,
  };
}

export function mockRefundActivities(world: RefundWorld, overrides: Partial<RefundActivities> = {}): RefundActivities {
  const answer = (refundId: string): ProviderRefund => {
    const r = world.refunds.get(refundId)!;
    return { status: r.status, failureReason: r.failureReason, attempt: r.attempt };
  };
  const happy: RefundActivities = {
    readRefundablePayment: async () => ({
      status: 'CAPTURED',
      currency: world.currency,
      capturedMinor: world.capturedMinor,
      refundedMinor: world.heldMinor,
      refundableMinor: world.capturedMinor - world.heldMinor,
    }),
    readOrderForRefund: async () => ({ ...world.order, lines: world.order.lines.map((l) => ({ ...l })) }),
    requestProviderRefund: async ({ refundId, amountMinor }) => {
      if (world.refunds.has(refundId)) return answer(refundId);
      if (world.heldMinor + amountMinor > world.capturedMinor) {
        return { refused: { code: 'refund_exceeds_captured', message: `only ${world.capturedMinor - world.heldMinor} refundable` } };
      }
      world.heldMinor += amountMinor;
      world.refunds.set(refundId, { amountMinor, attempt: 1, status: 'PENDING', failureReason: null });
      return answer(refundId);
    },
    syncProviderRefund: async ({ refundId }) => {
      const r = world.refunds.get(refundId)!;
      if (r.status === 'PENDING') {
        if (world.providerSucceeds(refundId, r.attempt)) r.status = 'SUCCEEDED';
        else {
          r.status = 'FAILED';
          r.failureReason = 'refund_rejected';
          world.heldMinor -= r.amountMinor;
        }
      }
      return answer(refundId);
    },
    retryProviderRefund: async ({ refundId }) => {
      const r = world.refunds.get(refundId)!;
      if (r.status !== 'FAILED') return { refused: { code: 'illegal_transition', message: `refund is ${r.status}` } };
      world.heldMinor += r.amountMinor;
      r.attempt += 1;
      r.status = 'PENDING';
      r.failureReason = null;
      return answer(refundId);
    },
    recordManualRefund: async ({ refundId }) => {
      const r = world.refunds.get(refundId)!;
      if (r.status !== 'FAILED') return { refused: { code: 'illegal_transition', message: `refund is ${r.status}` } };
      world.heldMinor += r.amountMinor;
      r.status = 'SUCCEEDED_MANUALLY';
      return answer(refundId);
    },
    recordOrderRefund: async ({ amountMinor }) => {
      const order = world.order;
      if (!['PAID', 'PARTIALLY_REFUNDED'].includes(order.status)) return { recorded: false, reason: 'illegal_transition' };
      order.refundedMinor += amountMinor;
      order.status = order.refundedMinor >= order.totalMinor ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
      return { recorded: true, status: order.status, refundedMinor: order.refundedMinor, totalMinor: order.totalMinor };
    },
    restockLines: async ({ lines }) => {
      for (const { sku, quantity } of lines) world.onHand[sku] = (world.onHand[sku] ?? 0) + quantity;
      return { restocked: true, reason: null };
    },
    readLoyaltyAward: async () => ({ awarded: world.awardedPoints, reversed: world.reversedPoints }),
    reverseLoyaltyPoints: async ({ points }) => {
      if (world.awardedPoints === 0) return { outcome: 'no_award' };
      if (world.reversedPoints + points > world.awardedPoints) return { outcome: 'exceeds' };
      world.reversedPoints += points;
      return { outcome: 'reversed' };
    },
    returnCoupon: async () => {
      if (world.couponStatus !== 'REDEEMED') return { returned: false };
      world.couponStatus = 'AVAILABLE';
      return { returned: true };
    },
  };
  return Object.fromEntries(
    (Object.keys(happy) as (keyof RefundActivities)[]).map((name) => {
      const impl = (overrides[name] ?? happy[name]) as (input: Record<string, unknown>) => Promise<unknown>;
      return [name, async (input: Record<string, unknown>) => {
        world.calls.push({ name, input });
        return impl(input);
      }];
    }),
  ) as unknown as RefundActivities;
}

export function refundInput(requestId: string, extra: Partial<RefundInput> = {}): RefundInput {
  return {
    requestId,
    orderId: 'order-r1',
    amount: 2000,
    reason: 'damaged in transit',
    restock: [],
    requestedBy: 'customer-service',
    ...extra,
  };
}

let run = 0;

/** Runs refunds on a worker of its own; `body` starts them with `start` and drives them. */
export async function withRefundWorker<T>(
  env: TestWorkflowEnvironment,
  workflowBundle: WorkflowBundle,
  activities: RefundActivities,
  body: (start: (input: RefundInput) => Promise<WorkflowHandle<typeof refund>>) => Promise<T>,
): Promise<T> {
  const taskQueue = `refund-test-${process.pid}-${++run}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    dataConverter: testDataConverter(),
    workflowBundle,
    activities,
  });
  return worker.runUntil(
    body((input) =>
      env.client.workflow.start<typeof refund>('refund', { args: [input], taskQueue, workflowId: refundWorkflowId(input.requestId) }),
    ),
  );
}

/** Polls the `state` query (which does not move the time-skipping clock) until `ready` holds. */
export async function stateWhen(handle: WorkflowHandle<typeof refund>, ready: (state: RefundState) => boolean, timeoutMs = 10_000): Promise<RefundState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await handle.query(refundStateQuery).catch(() => null);
    if (state && ready(state)) return state;
    if (Date.now() > deadline) throw new Error(`refund state never matched; last: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
