// Payments service (our record, keyed by order; it talks to the PSP): authorize, then capture or void.
import type { PaymentMethod } from '../shared/checkout.ts';
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
}
export interface OrderPaymentInput {
  idempotencyKey: string;
  orderId: string;
}
export interface CapturePaymentResult {
  capturedMinor: number;
}

export function paymentActivities(baseUrl: string) {
  const service = 'payments';
  const timeoutMs = PAYMENT_REQUEST_TIMEOUT_MS;
  const payment = (orderId: string, action: string) => `/payments/${encodeURIComponent(orderId)}/${action}`;
  return {
    async authorizePayment({ idempotencyKey, ...request }: AuthorizePaymentInput): Promise<AuthorizePaymentResult> {
      const path = '/payments/authorize';
      const body = await callService<AuthorizePaymentResult>({ service, baseUrl, path, body: request, idempotencyKey, timeoutMs });
      return { paymentId: body.paymentId };
    },

    /** Safe before or without an authorization: the service records a tombstone, so a late authorize is refused. */
    async voidPayment({ idempotencyKey, orderId }: OrderPaymentInput): Promise<void> {
      await callService({ service, baseUrl, path: payment(orderId, 'void'), body: {}, idempotencyKey, timeoutMs });
    },

    async capturePayment({ idempotencyKey, orderId }: OrderPaymentInput): Promise<CapturePaymentResult> {
      const path = payment(orderId, 'capture');
      const body = await callService<CapturePaymentResult>({ service, baseUrl, path, body: {}, idempotencyKey, timeoutMs });
      return { capturedMinor: body.capturedMinor };
    },
  };
}
