// How payments talks to the payment provider: JSON over HTTP, one idempotency
// key per order and operation (per refund attempt for refunds), the provider's secret
// API key on every call, and a deadline. Whatever makes the answer unknown
// or unusable — network error, timeout, 5xx, 429, a refused API key — is a retryable 503
// psp_unavailable; the provider's 2xx and 4xx answers go back to the caller.
import { unavailable } from '../../lib/http-errors.ts';
import { tracedCall } from '../../lib/http-observability.ts';
import { bearer } from '../common/auth.ts';

export const DEFAULT_PSP_TIMEOUT_MS = 10_000;

export type PspPaymentStatus = 'PENDING' | 'AUTHORIZED' | 'DECLINED' | 'CAPTURE_PENDING' | 'CAPTURED' | 'VOIDED' | 'REFUNDED';

export interface PspAnswer<Body = PspPaymentBody> {
  status: number;
  body: Body & PspErrorBody;
}

/** The provider's truth about a payment (GET /v1/payments/:id and most answers). */
export interface PspPaymentBody {
  id: string;
  status: PspPaymentStatus;
  declineCode?: string;
  amountMinor: number;
  capturedMinor: number;
  refundedMinor: number;
}

export type PspRefundStatus = 'PENDING' | 'SUCCEEDED' | 'FAILED';

/** The provider's truth about a refund (POST /v1/payments/:id/refunds, GET /v1/refunds/:id). */
export interface PspRefundBody {
  refundId: string;
  paymentId: string;
  reference: string;
  status: PspRefundStatus;
  amountMinor: number;
  failureReason: string | null;
}

export interface PspErrorBody {
  error?: { code: string; message: string; field?: string };
}

export interface PspClient {
  /** `paymentMethod` is the provider's token (`pm_…`): the only card data we ever send. */
  authorize(orderId: string, request: { amountMinor: number; currency: string; paymentMethod: string }): Promise<PspAnswer>;
  capture(orderId: string, pspPaymentId: string, amountMinor: number): Promise<PspAnswer>;
  void(orderId: string, pspPaymentId: string): Promise<PspAnswer>;
  /** One provider refund per attempt: key `refund:<refundId>:<attempt>`, reference = our refund id. */
  refund(refundId: string, attempt: number, pspPaymentId: string, amountMinor: number): Promise<PspAnswer<PspRefundBody>>;
  /** Reads the provider's truth afresh (no idempotency key: a read). */
  get(pspPaymentId: string): Promise<PspAnswer>;
  getRefund(pspRefundId: string): Promise<PspAnswer<PspRefundBody>>;
}

export function createPspClient(baseUrl: string, options: { apiKey: string; timeoutMs?: number }): PspClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PSP_TIMEOUT_MS;
  const auth = bearer(options.apiKey);

  async function call<Body = PspPaymentBody>(method: 'GET' | 'POST', path: string, idempotencyKey?: string, body?: unknown): Promise<PspAnswer<Body>> {
    let response: Response;
    let text: string;
    try {
      const url = new URL(path, baseUrl);
      // the provider continues our trace, as a real one would not: the simulator's side shows in it too
      ({ response, text } = await tracedCall(`${method} psp`, { 'http.request.method': method, 'url.full': url.href }, async (traceHeaders) => {
        const answer = await fetch(url, {
          method,
          headers:
            method === 'POST'
              ? { ...traceHeaders, ...auth, 'content-type': 'application/json', 'idempotency-key': idempotencyKey! }
              : { ...traceHeaders, ...auth },
          body: method === 'POST' ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(timeoutMs),
        });
        return { status: answer.status, response: answer, text: await answer.text() };
      }));
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `did not answer within ${timeoutMs} ms` : 'is unreachable';
      throw unavailable('psp_unavailable', `payment provider ${why}`);
    }
    // A refused API key is our misconfiguration, not the caller's: retryable until the key is fixed,
    // and never passed on as a 401 our own caller would take for its own credentials.
    if (response.status === 401 || response.status === 403) {
      throw unavailable('psp_unavailable', `payment provider refused our API key (${response.status})`, { pspStatus: response.status });
    }
    if (response.status >= 500 || response.status === 429) {
      throw unavailable('psp_unavailable', `payment provider answered ${response.status}`, { pspStatus: response.status });
    }
    try {
      return { status: response.status, body: JSON.parse(text) };
    } catch {
      throw unavailable('psp_unavailable', `payment provider answered ${response.status} with a body that is not JSON`);
    }
  }
  const payment = (pspPaymentId: string, action = '') => `/v1/payments/${encodeURIComponent(pspPaymentId)}${action}`;

  return {
    authorize: (orderId, { amountMinor, currency, paymentMethod }) =>
      call('POST', '/v1/payments', `authorize:${orderId}`, { amountMinor, currency, reference: orderId, paymentMethod }),
    capture: (orderId, pspPaymentId, amountMinor) => call('POST', payment(pspPaymentId, '/capture'), `capture:${orderId}`, { amountMinor }),
    void: (orderId, pspPaymentId) => call('POST', payment(pspPaymentId, '/void'), `void:${orderId}`, {}),
    refund: (refundId, attempt, pspPaymentId, amountMinor) =>
      call<PspRefundBody>('POST', payment(pspPaymentId, '/refunds'), `refund:${refundId}:${attempt}`, { amountMinor, reference: refundId }),
    get: (pspPaymentId) => call('GET', payment(pspPaymentId)),
    getRefund: (pspRefundId) => call<PspRefundBody>('GET', `/v1/refunds/${encodeURIComponent(pspRefundId)}`),
  };
}
