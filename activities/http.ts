// The one HTTP client for calling the downstream services (services/README.md).
// It carries the service credentials and the idempotency key, and turns every answer
// into a result, a typed non-retryable business failure, or a plain retryable error
// that names the service.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ApplicationFailure } from '@temporalio/common';
import { tracedCall } from '../lib/http-observability.ts';
import { BusinessFailure, type BusinessFailureType } from '../shared/errors.ts';

/** Below the activities' startToCloseTimeout, so a slow service reports a clear error. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 8_000;

export interface ServiceRequest {
  /** Service name, used in error messages: 'orders', 'inventory', ... */
  service: string;
  baseUrl: string;
  path: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  /** Sent as `Idempotency-Key`; every POST carries one. */
  idempotencyKey?: string;
  timeoutMs?: number;
}

/** Who the activities say they are: the worker passes these from its config (lib/config.ts). */
export interface ServiceCredentials {
  /** `Authorization: Bearer` for the downstream services: the first of `SERVICE_API_KEYS`. */
  serviceKey: string;
  /** For the payment provider itself (reconciliation reads its settlements): the first of `PSP_API_KEYS`. */
  pspApiKey: string;
}

// The activity factories take only URLs; the credentials travel with each call instead, so one
// worker's keys cannot leak into another's and no activity reads the environment.
const credentialsInScope = new AsyncLocalStorage<ServiceCredentials>();

/** The same activities, each call sending `credentials`. */
export function withServiceCredentials<A extends object>(credentials: ServiceCredentials, activities: A): A {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      typeof fn === 'function' ? (...args: unknown[]) => credentialsInScope.run(credentials, () => fn(...args)) : fn,
    ]),
  ) as A;
}

const CODE_TO_FAILURE: Record<string, BusinessFailureType> = {
  out_of_stock: BusinessFailure.OutOfStock,
  unknown_sku: BusinessFailure.UnknownSku,
  price_changed: BusinessFailure.PriceChanged,
  currency_mismatch: BusinessFailure.CurrencyMismatch,
  invalid_coupon: BusinessFailure.InvalidCoupon,
  payment_declined: BusinessFailure.PaymentDeclined,
  reservation_released: BusinessFailure.AlreadyCompensated,
  lock_released: BusinessFailure.AlreadyCompensated,
  payment_voided: BusinessFailure.AlreadyCompensated,
  illegal_transition: BusinessFailure.IllegalTransition,
  invalid_request: BusinessFailure.InvalidRequest,
  idempotency_key_reused: BusinessFailure.InvalidRequest,
  quota_exhausted: BusinessFailure.QuotaExhausted,
  customer_limit_reached: BusinessFailure.CustomerLimitReached,
  campaign_closed: BusinessFailure.CampaignClosed,
};

/** When the service's code is not one we name, the status decides. */
const STATUS_TO_FAILURE: Record<number, BusinessFailureType> = {
  400: BusinessFailure.InvalidRequest,
  402: BusinessFailure.PaymentDeclined,
  404: BusinessFailure.InvalidRequest,
  409: BusinessFailure.IllegalTransition,
  422: BusinessFailure.InvalidRequest,
};

interface ErrorBody {
  error?: { code?: string; message?: string; [detail: string]: unknown };
}

/** Calls a service and returns its JSON body; throws on anything but 2xx. */
export async function callService<T>(request: ServiceRequest): Promise<T> {
  const { status, body, retryAfter } = await send(request);
  if (status >= 200 && status < 300) return body as T;
  throw toFailure(request, status, body as ErrorBody, retryAfter);
}

/**
 * Like callService, but 404 means "nothing there" and yields undefined: for compensating
 * a step that may never have taken effect.
 */
export async function callServiceUnlessMissing<T>(request: ServiceRequest): Promise<T | undefined> {
  const { status, body, retryAfter } = await send(request);
  // Only the service's own "not found" counts: a 404 from a wrong route must not pass as "nothing to undo".
  if (status === 404 && (body as ErrorBody)?.error?.code === 'not_found') return undefined;
  if (status >= 200 && status < 300) return body as T;
  throw toFailure(request, status, body as ErrorBody, retryAfter);
}

interface Answer {
  status: number;
  body: unknown;
  retryAfter: string | null;
}

/** One CLIENT span per call; the service continues its trace (and its log lines name our workflow and order). */
function send(request: ServiceRequest): Promise<Answer> {
  const { service, method = 'POST' } = request;
  const url = new URL(request.path, request.baseUrl);
  const attributes = { 'http.request.method': method, 'url.full': url.href, 'commerce.service': service };
  return tracedCall(`${method} ${service}`, attributes, (traceHeaders) => fetchAnswer(request, url, traceHeaders));
}

async function fetchAnswer(request: ServiceRequest, url: URL, traceHeaders: Record<string, string>): Promise<Answer> {
  const { service, path, method = 'POST', body, idempotencyKey } = request;
  const headers: Record<string, string> = { accept: 'application/json', ...traceHeaders };
  // Without credentials in scope nothing is sent: the service's 401 then shows as a retrying activity.
  const credentials = credentialsInScope.getStore();
  if (credentials) headers.authorization = `Bearer ${service === 'psp' ? credentials.pspApiKey : credentials.serviceKey}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(request.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
    });
    text = await response.text();
  } catch (err) {
    const why = err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : `unreachable (${describe(err)})`;
    throw new ServiceUnavailableError(`${service} service ${why}: ${method} ${path}`);
  }
  return { status: response.status, body: parseJson(text), retryAfter: response.headers.get('retry-after') };
}

function toFailure(request: ServiceRequest, status: number, body: ErrorBody, retryAfter: string | null): Error {
  const { service, path, method = 'POST' } = request;
  const { code = 'unknown', message = '', ...details } = body?.error ?? {};
  const summary = `${service} service answered ${status} ${code} to ${method} ${path}${message ? `: ${message}` : ''}`;
  // Only the refusal statuses are final; a 5xx stays retryable whatever code it carries.
  const refusal = STATUS_TO_FAILURE[status];
  if (refusal !== undefined) {
    const known = Object.hasOwn(CODE_TO_FAILURE, code);
    const type = known ? CODE_TO_FAILURE[code]! : refusal;
    // The service's own message names the refusal ("Card declined"); the details say who and how.
    const text = known && message ? message : summary;
    return ApplicationFailure.nonRetryable(text, type, { service, status, code, ...details });
  }
  if (status === 429 && retryAfter !== null && Number(retryAfter) > 0) {
    // The same key is still being worked on; come back when the service says so.
    return ApplicationFailure.create({ message: summary, type: 'ServiceBusy', nextRetryDelay: Number(retryAfter) * 1000 });
  }
  // 429, 5xx and anything unexpected: retried, so an outage or a misconfiguration shows as
  // a retrying activity instead of a lost step.
  return new ServiceUnavailableError(summary);
}

/** Retryable: its `name` becomes the failure type seen by the workflow and the Web UI. */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailable';
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { code: 'unparseable_body', message: text.slice(0, 200) } };
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}
