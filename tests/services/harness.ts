// Shared set-up for the service tests: a fresh migrated and seeded database, the
// six services on ephemeral ports (test keys, fault injection on unless a test says
// otherwise), and a tiny HTTP client that returns status, headers and body instead
// of throwing, and sends each service's key unless told to send another or none.
import { randomUUID } from 'node:crypto';
import type { ServiceUrls } from '../../lib/config.ts';
import type { Db } from '../../lib/db.ts';
import { seed } from '../../scripts/seed.ts';
import { startServices, type StartServicesOptions } from '../../services/main.ts';
import { createTestDatabase } from '../support/database.ts';
import type { PaymentMethod } from '../../shared/checkout.ts';
import { tokeniseCard } from '../support/cards.ts';
import { authFor, TEST_PSP_API_KEYS, TEST_SERVICE_KEYS } from '../support/service-keys.ts';

export type Service = keyof ServiceUrls;

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // Tests read arbitrary fields of the JSON answer.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface ServiceStack {
  db: Db;
  databaseUrl: string;
  urls: ServiceUrls;
  /** POST with a fresh Idempotency-Key unless one is given (null sends none). */
  post(service: Service, path: string, body?: unknown, key?: string | null, init?: { timeoutMs?: number }): Promise<Answer>;
  get(service: Service, path: string): Promise<Answer>;
  /** The simulator's token for a test card (tokenised once per stack, then reused like a saved card). */
  paymentMethod(number: string): Promise<PaymentMethod>;
  /** `headers` add to or replace the defaults; `authorization: null` sends no credentials at all. */
  request(service: Service, method: string, path: string, body?: unknown, headers?: RequestHeaders): Promise<Answer>;
  stop(): Promise<void>;
}

/** Request headers; null leaves a default header out. */
type RequestHeaders = Record<string, string | null>;

export async function startServiceStack(options: Omit<StartServicesOptions, 'databaseUrl'> = {}): Promise<ServiceStack> {
  const database = await createTestDatabase('cf_svc');
  await seed(database.db);
  const services = await startServices({
    databaseUrl: database.url,
    ports: { orders: 0, inventory: 0, coupons: 0, loyalty: 0, payments: 0, psp: 0 },
    pspTimeoutCardMs: 200,
    serviceKeys: TEST_SERVICE_KEYS,
    pspApiKeys: TEST_PSP_API_KEYS,
    faultInjection: true,
    ...options,
  });

  async function request(
    service: Service,
    method: string,
    path: string,
    body?: unknown,
    headers: RequestHeaders = {},
    timeoutMs = 10_000,
  ): Promise<Answer> {
    const all: RequestHeaders = { ...authFor(service), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers };
    const response = await fetch(new URL(path, services.urls[service]), {
      method,
      headers: Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== null)),
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : undefined };
  }

  const tokens = new Map<string, Promise<PaymentMethod>>();
  const paymentMethod = (number: string) => {
    if (!tokens.has(number)) {
      const tokenised = tokeniseCard(services.urls.psp, number);
      tokens.set(number, tokenised);
      tokenised.catch(() => tokens.delete(number)); // a refusal is not remembered: the next call asks again
    }
    return tokens.get(number)!;
  };

  return {
    db: database.db,
    databaseUrl: database.url,
    urls: services.urls,
    post: (service, path, body = {}, key, init) =>
      request(service, 'POST', path, body, key === null ? {} : { 'idempotency-key': key ?? randomUUID() }, init?.timeoutMs),
    get: (service, path) => request(service, 'GET', path),
    paymentMethod,
    request: (service, method, path, body, headers) => request(service, method, path, body, headers),
    async stop() {
      await services.close();
      await database.drop();
    },
  };
}

export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export { CARDS } from '../support/cards.ts';

/** Polls until `condition` holds: for effects that land while a response is still held. */
export async function until(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
