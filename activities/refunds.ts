// What the Refund workflow asks of the services (services/README.md, "Refunds"). Each call
// carries its idempotency key; the refusals that are answers (the cap is reached, there is
// nothing to restock or reverse) come back as results, the rest as typed failures.
import { ApplicationFailure } from '@temporalio/common';
import type { ServiceUrls } from '../lib/config.ts';
import type { RestockLine } from '../shared/refunds.ts';
import { callService, callServiceUnlessMissing } from './http.ts';

/** The payments service may wait on the PSP, as for payments. */
const PAYMENT_REQUEST_TIMEOUT_MS = 15_000;

export interface RefundablePayment {
  status: string;
  currency: string;
  capturedMinor: number;
  refundedMinor: number;
  refundableMinor: number;
}
export interface OrderForRefund {
  status: string;
  customerId: string;
  couponCode: string | null;
  totalMinor: number;
  refundedMinor: number;
  lines: RestockLine[];
}
/** Where our refund stands at the payments service (and, through it, at the provider). */
export interface ProviderRefund {
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED' | 'SUCCEEDED_MANUALLY';
  failureReason: string | null;
  attempt: number;
}
/** A request the payments service refused for a business reason (`refund_exceeds_captured`, `illegal_transition`). */
export interface RefundRefusal {
  refused: { code: string; message: string };
}
export interface RequestRefundInput {
  idempotencyKey: string;
  orderId: string;
  refundId: string;
  amountMinor: number;
  reason: string;
}
export interface RefundIdInput {
  idempotencyKey: string;
  refundId: string;
}
export interface RecordManualRefundInput extends RefundIdInput {
  reference: string;
  by: string;
}
export interface RecordOrderRefundInput {
  idempotencyKey: string;
  orderId: string;
  refundId: string;
  amountMinor: number;
}
export type RecordOrderRefundResult =
  | { recorded: true; status: string; refundedMinor: number; totalMinor: number }
  | { recorded: false; reason: string };
export interface RestockInput {
  idempotencyKey: string;
  restockId: string;
  orderId: string;
  lines: RestockLine[];
}
export interface LoyaltyAward {
  awarded: number;
  reversed: number;
}
export interface ReversePointsInput {
  idempotencyKey: string;
  orderId: string;
  reversalId: string;
  points: number;
}

interface PaymentBody {
  status: string;
  currency: string;
  capturedMinor?: number;
  refundedMinor?: number;
  refundableMinor?: number;
}
interface OrderBody {
  status: string;
  customerId: string;
  couponCode: string | null;
  totalMinor: number;
  refundedMinor?: number;
  lines: { sku: string; quantity: number }[];
}
interface LoyaltyAccountBody {
  entries: { orderId: string; kind: string; points: number }[];
}

export function refundActivities(urls: ServiceUrls) {
  const payments = { service: 'payments', baseUrl: urls.payments, timeoutMs: PAYMENT_REQUEST_TIMEOUT_MS };
  const order = (orderId: string) => `/orders/${encodeURIComponent(orderId)}`;
  const refund = (refundId: string, action: string) => `/payments/refunds/${encodeURIComponent(refundId)}/${action}`;
  return {
    /** The order's payment as our payments service knows it; null when the order has none. */
    async readRefundablePayment({ orderId }: { orderId: string }): Promise<RefundablePayment | null> {
      const path = `/payments/${encodeURIComponent(orderId)}`;
      const body = await callServiceUnlessMissing<PaymentBody>({ ...payments, path, method: 'GET' });
      if (body === undefined) return null;
      const capturedMinor = body.capturedMinor ?? 0;
      const refundedMinor = body.refundedMinor ?? 0;
      return {
        status: body.status,
        currency: body.currency,
        capturedMinor,
        refundedMinor,
        refundableMinor: body.refundableMinor ?? Math.max(capturedMinor - refundedMinor, 0),
      };
    },

    async readOrderForRefund({ orderId }: { orderId: string }): Promise<OrderForRefund | null> {
      const body = await callServiceUnlessMissing<OrderBody>({ service: 'orders', baseUrl: urls.orders, path: order(orderId), method: 'GET' });
      if (body === undefined) return null;
      return {
        status: body.status,
        customerId: body.customerId,
        couponCode: body.couponCode ?? null,
        totalMinor: body.totalMinor,
        refundedMinor: body.refundedMinor ?? 0,
        lines: body.lines.map(({ sku, quantity }) => ({ sku, quantity })),
      };
    },

    /** Holds the amount against the capture and asks the provider; the cap is the payments service's. */
    async requestProviderRefund({ idempotencyKey, orderId, ...request }: RequestRefundInput): Promise<ProviderRefund | RefundRefusal> {
      const path = `/payments/${encodeURIComponent(orderId)}/refunds`;
      return refusalAsAnswer(() => callService<ProviderRefund>({ ...payments, path, body: request, idempotencyKey }).then(providerRefund));
    },

    /** The active query: reads the provider afresh, so it carries no idempotency key. */
    async syncProviderRefund({ refundId }: { refundId: string }): Promise<ProviderRefund> {
      return providerRefund(await callService<ProviderRefund>({ ...payments, path: refund(refundId, 'sync'), body: {} }));
    },

    async retryProviderRefund({ idempotencyKey, refundId }: RefundIdInput): Promise<ProviderRefund | RefundRefusal> {
      return refusalAsAnswer(() =>
        callService<ProviderRefund>({ ...payments, path: refund(refundId, 'retry'), body: {}, idempotencyKey }).then(providerRefund),
      );
    },

    async recordManualRefund({ idempotencyKey, refundId, reference, by }: RecordManualRefundInput): Promise<ProviderRefund | RefundRefusal> {
      return refusalAsAnswer(() =>
        callService<ProviderRefund>({ ...payments, path: refund(refundId, 'record-manual'), body: { reference, by }, idempotencyKey }).then(
          providerRefund,
        ),
      );
    },

    /** An order that was never paid (a checkout undoing its capture) has no refund to record. */
    async recordOrderRefund({ idempotencyKey, orderId, refundId, amountMinor }: RecordOrderRefundInput): Promise<RecordOrderRefundResult> {
      const request = { service: 'orders', baseUrl: urls.orders, path: `${order(orderId)}/refunds`, body: { refundId, amountMinor }, idempotencyKey };
      try {
        const body = await callServiceUnlessMissing<OrderBody>(request);
        if (body === undefined) return { recorded: false, reason: 'not_found: no such order' };
        return { recorded: true, status: body.status, refundedMinor: body.refundedMinor ?? 0, totalMinor: body.totalMinor };
      } catch (err) {
        const code = refusalCode(err);
        if (code === 'illegal_transition') return { recorded: false, reason: `${code}: ${(err as Error).message}` };
        throw err;
      }
    },

    /** Puts the lines back on hand; false (with the reason) when they were never sold or are already back. */
    async restockLines({ idempotencyKey, ...restock }: RestockInput): Promise<{ restocked: boolean; reason: string | null }> {
      try {
        await callService({ service: 'inventory', baseUrl: urls.inventory, path: '/restocks', body: restock, idempotencyKey });
        return { restocked: true, reason: null };
      } catch (err) {
        const code = refusalCode(err);
        if (code === 'not_sold' || code === 'restock_exceeds_sold') return { restocked: false, reason: `${code}: ${(err as Error).message}` };
        throw err;
      }
    },

    /** Points awarded for the order and reversed so far (positive numbers). */
    async readLoyaltyAward({ customerId, orderId }: { customerId: string; orderId: string }): Promise<LoyaltyAward> {
      const path = `/accounts/${encodeURIComponent(customerId)}`;
      const body = await callService<LoyaltyAccountBody>({ service: 'loyalty', baseUrl: urls.loyalty, path, method: 'GET' });
      const entries = body.entries.filter((e) => e.orderId === orderId);
      const sum = (kind: string) => entries.filter((e) => e.kind === kind).reduce((total, e) => total + Math.abs(e.points), 0);
      return { awarded: sum('AWARD'), reversed: sum('REVERSE') };
    },

    /** `exceeds`: other refunds reversed more meanwhile (read the award again); `no_award`: nothing was awarded. */
    async reverseLoyaltyPoints({ idempotencyKey, orderId, reversalId, points }: ReversePointsInput): Promise<{ outcome: 'reversed' | 'exceeds' | 'no_award' }> {
      const path = `/awards/${encodeURIComponent(orderId)}/reversals`;
      try {
        const body = await callServiceUnlessMissing({ service: 'loyalty', baseUrl: urls.loyalty, path, body: { reversalId, points }, idempotencyKey });
        return { outcome: body === undefined ? 'no_award' : 'reversed' };
      } catch (err) {
        if (refusalCode(err) === 'reversal_exceeds_award') return { outcome: 'exceeds' };
        throw err;
      }
    },

    /** The redeemed coupon becomes usable again; false when none was redeemed for the order. */
    async returnCoupon({ idempotencyKey, orderId }: { idempotencyKey: string; orderId: string }): Promise<{ returned: boolean }> {
      const path = `/locks/${encodeURIComponent(orderId)}/return`;
      try {
        const body = await callServiceUnlessMissing({ service: 'coupons', baseUrl: urls.coupons, path, body: {}, idempotencyKey });
        return { returned: body !== undefined };
      } catch (err) {
        if (refusalCode(err) === 'not_redeemed') return { returned: false };
        throw err;
      }
    },
  };
}

export type RefundActivities = ReturnType<typeof refundActivities>;

function providerRefund(body: ProviderRefund): ProviderRefund {
  return { status: body.status, failureReason: body.failureReason ?? null, attempt: body.attempt ?? 1 };
}

/** A 409 from the payments service is its verdict on this refund, not a fault. */
async function refusalAsAnswer(call: () => Promise<ProviderRefund>): Promise<ProviderRefund | RefundRefusal> {
  try {
    return await call();
  } catch (err) {
    const code = refusalCode(err);
    const status = (err as ApplicationFailure).details?.[0] as { status?: number } | undefined;
    if (code === undefined || status?.status !== 409) throw err;
    return { refused: { code, message: (err as Error).message } };
  }
}

/** The service's error code behind a business refusal (see toFailure in http.ts), if it is one. */
function refusalCode(err: unknown): string | undefined {
  if (!(err instanceof ApplicationFailure) || !err.nonRetryable) return undefined;
  const [details] = err.details ?? [];
  const code = (details as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
