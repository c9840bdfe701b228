// How the API turns the card a checkout request names into the payment provider's token, before
// any run starts: a number is exchanged at the provider (POST /v1/payment_methods, which keeps it
// in its vault), a token is looked up there (GET /v1/payment_methods/:id). Only the token, brand
// and last four digits come back, and no message built here ever contains the number.
import { HttpError, invalidRequest, unavailable } from '../lib/http-errors.ts';
import { tracedCall } from '../lib/http-observability.ts';
import type { PaymentMethod } from '../shared/checkout.ts';
import { CARD_BRANDS, PAYMENT_METHOD_TOKEN, type CardBrand } from '../shared/payments.ts';
import { bearer } from '../services/common/auth.ts';
import { idempotencyKeyReused, type RequestedPaymentMethod } from './checkout-request.ts';

export const DEFAULT_PAYMENT_METHOD_TIMEOUT_MS = 5_000;

export interface PaymentMethodClient {
  /**
   * The provider's token for `number`; the same key and number always give the same token. Refused
   * with 400 on `paymentMethod.number` when the provider does not take the card, 422
   * `idempotency_key_reused` when the key already tokenised another number.
   */
  tokenise(idempotencyKey: string, number: string): Promise<PaymentMethod>;
  /** The card behind a token the client got from the provider; an unknown one is 400 on `paymentMethod.token`. */
  lookup(token: string): Promise<PaymentMethod>;
}

/**
 * The token a checkout is paid with: a card number is tokenised under `checkout:<key>`, so a
 * repeated POST gets the same token and a reused key with another card is refused like any reused key.
 */
export async function resolvePaymentMethod(
  client: PaymentMethodClient,
  checkoutKey: string,
  requested: RequestedPaymentMethod,
): Promise<PaymentMethod> {
  if (requested.type === 'token') return client.lookup(requested.token);
  try {
    return await client.tokenise(`checkout:${checkoutKey}`, requested.number);
  } catch (err) {
    if (err instanceof HttpError && err.code === 'idempotency_key_reused') throw idempotencyKeyReused(checkoutKey);
    throw err;
  }
}

export function createPaymentMethodClient(pspUrl: string, options: { apiKey: string; timeoutMs?: number }): PaymentMethodClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PAYMENT_METHOD_TIMEOUT_MS;
  const auth = bearer(options.apiKey);

  async function call(method: 'GET' | 'POST', path: string, post?: { idempotencyKey: string; body: unknown }) {
    const url = new URL(path, pspUrl);
    try {
      return await tracedCall(`${method} psp`, { 'http.request.method': method, 'url.full': url.href, 'commerce.service': 'psp' }, async (traceHeaders) => {
        const response = await fetch(url, {
          method,
          headers: post
            ? { ...traceHeaders, ...auth, accept: 'application/json', 'content-type': 'application/json', 'idempotency-key': post.idempotencyKey }
            : { ...traceHeaders, ...auth, accept: 'application/json' },
          body: post ? JSON.stringify(post.body) : undefined,
          signal: AbortSignal.timeout(timeoutMs),
        });
        return { status: response.status, body: parseJson(await response.text()) };
      });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? `did not answer within ${timeoutMs} ms` : 'is unreachable';
      throw pspUnavailable(`the payment provider ${why}`);
    }
  }

  return {
    async tokenise(idempotencyKey, number) {
      const answer = await call('POST', '/v1/payment_methods', { idempotencyKey, body: { type: 'card', card: { number } } });
      if (answer.status === 200 || answer.status === 201) return paymentMethodOf(answer);
      const error = errorOf(answer.body);
      if (answer.status === 400 && error?.field === 'card.number') throw cardRefused();
      if (answer.status === 422 && error?.code === 'idempotency_key_reused') throw cardKeyReused(idempotencyKey);
      throw unexpected(answer.status, 'tokenising a card');
    },
    async lookup(token) {
      if (!PAYMENT_METHOD_TOKEN.test(token)) throw unknownPaymentMethod(token);
      const answer = await call('GET', `/v1/payment_methods/${encodeURIComponent(token)}`);
      if (answer.status === 200) return paymentMethodOf(answer);
      if (answer.status === 404) throw unknownPaymentMethod(token);
      throw unexpected(answer.status, 'a payment-method look-up');
    },
  };
}

/** The provider cannot be asked (unreachable, slow, failing, or refusing our key): retry later. */
export function pspUnavailable(message: string, details: Record<string, unknown> = {}): HttpError {
  return unavailable('psp_unavailable', `${message}; retry later`, { dependency: 'psp', ...details });
}

/** The provider does not take this card; the message names the field, never the number. */
export function cardRefused(): HttpError {
  return invalidRequest('paymentMethod.number: the payment provider does not accept this card number', 'paymentMethod.number');
}

export function unknownPaymentMethod(token: string): HttpError {
  return invalidRequest(`paymentMethod.token: the payment provider has no payment method "${token}"`, 'paymentMethod.token');
}

/** The provider's refusal of a key that already tokenised another number (resolvePaymentMethod words it for a checkout). */
export function cardKeyReused(idempotencyKey: string): HttpError {
  return new HttpError(422, 'idempotency_key_reused', `Idempotency-Key "${idempotencyKey}" was already used for a different card`);
}

/**
 * Any answer we cannot use: a refused API key is our misconfiguration, never passed on as a 401
 * or 403 our caller would take for its own credentials; a 5xx is the provider failing.
 */
function unexpected(status: number, what: string): HttpError {
  const why = status === 401 || status === 403 ? `refused our API key (${status})` : `answered ${status} to ${what}`;
  return pspUnavailable(`the payment provider ${why}`, { pspStatus: status });
}

function paymentMethodOf(answer: { status: number; body: unknown }): PaymentMethod {
  const body = answer.body as { id?: unknown; card?: { brand?: unknown; last4?: unknown } } | null;
  const token = body?.id;
  const brand = body?.card?.brand;
  const last4 = body?.card?.last4;
  const wellFormed =
    typeof token === 'string' &&
    PAYMENT_METHOD_TOKEN.test(token) &&
    CARD_BRANDS.includes(brand as CardBrand) &&
    typeof last4 === 'string' &&
    /^\d{4}$/.test(last4);
  if (!wellFormed) throw pspUnavailable(`the payment provider answered ${answer.status} with a payment method we cannot read`);
  return { token, brand: brand as CardBrand, last4 };
}

function errorOf(body: unknown): { code?: unknown; field?: unknown } | undefined {
  return (body as { error?: { code?: unknown; field?: unknown } } | null)?.error;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
