// The API on a free port, wired to a Temporal client, a database check, its own migrated
// database (the audit log) and a development token issuer, plus small HTTP helpers for the
// tests. No worker: started checkouts wait in the task queue, which is all most of these tests
// need from Temporal.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { createApiApp, type ApiTimeouts } from '../../api/app.ts';
import { createTokenVerifier } from '../../api/auth.ts';
import type { CatalogueClient } from '../../api/catalogue.ts';
import type { PaymentMethodClient } from '../../api/payment-methods.ts';
import { createDatabaseCheck, type DatabaseCheck } from '../../api/database-check.ts';
import { connectTemporal } from '../../api/temporal.ts';
import type { Db } from '../../lib/db.ts';
import { freePort } from '../../lib/temporal-dev-server.ts';
import type { Role } from '../../shared/permissions.ts';
import { authConfigFor, bearer, startTestIssuer, type DevIssuer } from '../support/auth.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { seededCatalogue } from '../support/catalogue.ts';
import { simulatedPaymentMethods } from '../support/payment-methods.ts';
import { testDataConverter } from '../support/payload-keys.ts';

export const DATABASE_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const TEMPORAL_UI_URL = 'http://temporal-ui.test';
export const FAST_TIMEOUTS: ApiTimeouts = { temporalMs: 1_500, stateQueryMs: 500, healthMs: 1_500 };

/** Who a request is sent as: a token for these roles and subject from the harness's issuer. */
export interface Caller {
  role: Role | Role[];
  subject: string;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Shorthand for `token: await tokenFor(as.role, as.subject)`. */
  as?: Caller;
}

export interface ApiHarness {
  baseUrl: string;
  client: Client;
  /** The API's own database (audit log; webhook events and reconciliation when passed as `db`). */
  db: Db;
  issuer: DevIssuer;
  /** An access token the API accepts, for `role` (or several) and `subject`. */
  tokenFor(role: Role | Role[], subject: string): Promise<string>;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
}

/** A database URL nothing listens on. */
export async function unreachableDatabaseUrl(): Promise<string> {
  return `postgresql://postgres@127.0.0.1:${await freePort()}/commerce`;
}

/** A Temporal address nothing listens on. */
export async function unreachableTemporalAddress(): Promise<string> {
  return `127.0.0.1:${await freePort()}`;
}

export interface ApiHarnessOptions {
  temporalAddress: string;
  databaseUrl?: string;
  /** With a database (and secrets), the API serves POST /webhooks/psp. */
  db?: Db;
  webhookSecrets?: string[];
  webhookToleranceSeconds?: number;
  /** Where POST /checkouts prices its lines (default: the seeded catalogue, in memory). */
  catalogue?: CatalogueClient;
  /** Where POST /checkouts exchanges a card number for a token (default: a simulated vault, in memory). */
  paymentMethods?: PaymentMethodClient;
  /** The key of the request fingerprints in memos (default: the API's development one). */
  fingerprintSecret?: string;
  /** Requests per minute per address (default: so many no test meets it). */
  rateLimitPerMinute?: number;
  /** With a codec, the API serves /codec/* (CORS for `codecCorsOrigins`). */
  payloadCodec?: PayloadCodec;
  codecCorsOrigins?: string[];
}

const UNLIMITED_FOR_TESTS = 1_000_000;

export async function startApiHarness(options: ApiHarnessOptions): Promise<ApiHarness> {
  // Without a database of the test's own, one is made for the audit log (operator actions need it).
  const own: TestDatabase | null = options.db ? null : await createTestDatabase('cf_api');
  const db = options.db ?? own!.db;
  const issuer = await startTestIssuer();
  const connection = connectTemporal(options.temporalAddress);
  const client = new Client({ connection, namespace: 'default', dataConverter: testDataConverter() });
  const database: DatabaseCheck = createDatabaseCheck(options.databaseUrl ?? DATABASE_URL, 1_000);
  const app = createApiApp({
    client,
    namespace: 'default',
    checkDatabase: database.check,
    temporalUiUrl: TEMPORAL_UI_URL,
    timeouts: FAST_TIMEOUTS,
    db,
    verifier: createTokenVerifier(authConfigFor(issuer)),
    issuerUrl: issuer.url,
    rateLimitPerMinute: options.rateLimitPerMinute ?? UNLIMITED_FOR_TESTS,
    webhookSecrets: options.webhookSecrets,
    webhookToleranceSeconds: options.webhookToleranceSeconds,
    catalogue: options.catalogue ?? seededCatalogue(),
    paymentMethods: options.paymentMethods ?? simulatedPaymentMethods(),
    fingerprintSecret: options.fingerprintSecret,
    payloadCodec: options.payloadCodec,
    codecCorsOrigins: options.codecCorsOrigins,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    client,
    db,
    issuer,
    tokenFor: (role, subject) => issuer.tokenFor(role, subject),
    async request(method, path, { body, headers = {}, token, as } = {}) {
      const credential = token ?? (as ? await issuer.tokenFor(as.role, as.subject) : undefined);
      const init: RequestInit = { method, headers: { ...(credential ? bearer(credential) : {}), ...headers } };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] = 'application/json';
      }
      const res = await fetch(`${baseUrl}${path}`, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([connection.close(), database.close(), issuer.stop()]);
      await own?.drop();
    },
  };
}

/** A valid POST /checkouts body; `overrides` replace top-level fields. */
export function checkoutBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    customerId: 'cust-ada',
    currency: 'EUR',
    lines: [
      { sku: 'MUG-LOGO', quantity: 2, unitPriceMinor: 1299 },
      { sku: 'TSHIRT-RED-M', quantity: 1, unitPriceMinor: 1999 },
    ],
    paymentMethod: { type: 'card', number: '4242424242424242' },
    ...overrides,
  };
}

let keyCounter = 0;
/** A fresh idempotency key per call, unique across test runs against one server. */
export function freshKey(label: string): string {
  keyCounter += 1;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${keyCounter}`;
}
