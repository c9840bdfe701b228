// Payments service (our record, keyed by order; it talks to the PSP). The provider decides
// asynchronously: authorize and capture answer with a pending status, and `syncPayment`
// asks for the provider's truth. Then capture or void; refunds are the Refund workflow's
// (activities/refunds.ts).
import { ApplicationFailure } from '@temporalio/common';
import type { PaymentMethod } from '../shared/checkout.ts';
import type { PaymentStatus } from '../shared/payments.ts';
import { callService } from './http.ts';

/** The payments service may wait on the PSP; give it longer than the other services. */
const PAYMENT_REQUEST_TIMEOUT_MS = 15_000;

export interface AuthorizePaymentInput {
  idempotencyKey: string;
  orderId: string;
  amountMinor: number;
  currency: string;
  paymentMethod: PaymentMethod;
}
export interface AuthorizePaymentResult {
  paymentId: string;
  /** Usually AUTHORIZATION_PENDING; a provider that decides at once answers AUTHORIZED or DECLINED. */
  status: PaymentStatus;
}
export interface OrderPaymentInput {
  idempotencyKey: string;
  orderId: string;
}
export interface CapturePaymentResult {
  /** CAPTURE_PENDING until the provider confirms; CAPTURED if it already has. */
  status: PaymentStatus;
  capturedMinor: number;
}
export interface SyncPaymentInput {
  orderId: string;
}
/** The provider's truth about an order's payment, as the payments service last read it. */
export interface PaymentSnapshot {
  paymentId: string;
  status: PaymentStatus;
  amountMinor: number;
  capturedMinor: number;
  refundedMinor: number;
  declineCode: string | null;
}
export interface VoidPaymentResult {
  /**
   * `released`: nothing is held (voided, declined, or never authorized);
   * `processing`: the provider can no longer stop the pending authorization — ask for its outcome;
   * `captured`: the money already moved — a void cannot undo it.
   */
  outcome: 'released' | 'processing' | 'captured';
}

/** The refusals of a void that are answers, not failures. */
const VOID_REFUSALS: Record<string, VoidPaymentResult['outcome']> = {
  payment_processing: 'processing',
  already_captured: 'captured',
};

export function paymentActivities(baseUrl: string) {
  const service = 'payments';
  const timeoutMs = PAYMENT_REQUEST_TIMEOUT_MS;
  const payment = (orderId: string, action: string) => `/payments/${encodeURIComponent(orderId)}/${action}`;
  return {
    async authorizePayment({ idempotencyKey, ...request }: AuthorizePaymentInput): Promise<AuthorizePaymentResult> {
      const path = '/payments/authorize';
      const body = await callService<AuthorizePaymentResult>({ service, baseUrl, path, body: request, idempotencyKey, timeoutMs });
      return { paymentId: body.paymentId, status: body.status };
    },

    /** The active query: asks the provider afresh on every call, so it carries no idempotency key. */
    async syncPayment({ orderId }: SyncPaymentInput): Promise<PaymentSnapshot> {
      const body = await callService<Partial<PaymentSnapshot> & { paymentId: string; status: PaymentStatus }>({
        service, baseUrl, path: payment(orderId, 'sync'), body: {}, timeoutMs,
      });
      return {
        paymentId: body.paymentId,
        status: body.status,
        amountMinor: body.amountMinor ?? 0,
        capturedMinor: body.capturedMinor ?? 0,
        refundedMinor: body.refundedMinor ?? 0,
        declineCode: body.declineCode ?? null,
      };
    },

    /** Safe before or without an authorization: the service records a tombstone, so a late authorize is refused. */
    async voidPayment({ idempotencyKey, orderId }: OrderPaymentInput): Promise<VoidPaymentResult> {
      try {
        await callService({ service, baseUrl, path: payment(orderId, 'void'), body: {}, idempotencyKey, timeoutMs });
        return { outcome: 'released' };
      } catch (err) {
        const outcome = VOID_REFUSALS[refusalCode(err) ?? ''];
        if (outcome === undefined) throw err;
        return { outcome };
      }
    },

    async capturePayment({ idempotencyKey, orderId }: OrderPaymentInput): Promise<CapturePaymentResult> {
      const path = payment(orderId, 'capture');
      const body = await callService<CapturePaymentResult>({ service, baseUrl, path, body: {}, idempotencyKey, timeoutMs });
      return { status: body.status, capturedMinor: body.capturedMinor ?? 0 };
    },
  };
}

/** The service's error code behind a business refusal (see toFailure in http.ts), if it is one. */
function refusalCode(err: unknown): string | undefined {
  if (!(err instanceof ApplicationFailure) || !err.nonRetryable) return undefined;
  const [details] = err.details ?? [];
  const code = (details as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
