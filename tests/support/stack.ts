// The whole system with real parts for integration tests: a fresh migrated and
// seeded PostgreSQL database, a real Temporal dev server on free ports, the six
// services on ephemeral ports, the checkout worker, a development identity provider
// and the HTTP API that trusts it (tokenFor gives a token for any role and subject).
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import pg from 'pg';
import { createApiApp } from '../../api/app.ts';
import { createCatalogueClient } from '../../api/catalogue.ts';
import { createPaymentMethodClient } from '../../api/payment-methods.ts';
import { createTokenVerifier } from '../../api/auth.ts';
import { loadConfig, serviceUrlEnv, type ServiceUrls } from '../../lib/config.ts';
import { temporalClientInterceptors } from '../../lib/telemetry.ts';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { seed } from '../../scripts/seed.ts';
import { startServices, type StartServicesOptions } from '../../services/main.ts';
import { createCheckoutWorker } from '../../workers/checkout-worker.ts';
import { createCouponGrantsWorker } from '../../workers/coupon-grants-worker.ts';
import type { Role } from '../../shared/permissions.ts';
import { authConfigFor, startTestIssuer, type DevIssuer } from './auth.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { authFor, TEST_CREDENTIALS, TEST_KEYS_ENV, TEST_PSP_API_KEYS, TEST_SERVICE_KEYS } from './service-keys.ts';
import { TEST_PAYLOAD_KEYS, testDataConverter } from './payload-keys.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface TestStack {
  database: TestDatabase;
  temporal: DevServer;
  client: Client;
  serviceUrls: ServiceUrls;
  apiUrl: string;
  /** The identity provider the API trusts. */
  issuer: DevIssuer;
  /** An access token the API accepts, for `subject` in `role` (a customer's subject is their customer id). */
  tokenFor(role: Role | Role[], subject: string): Promise<string>;
  /** Starts a worker in this process (returns once it is polling). */
  startWorker(): Promise<Worker>;
  /** Starts `workers/main.ts` as a separate process, e.g. to kill it mid-flight; `env` adds to its environment. */
  spawnWorkerProcess(env?: Record<string, string>): Promise<ChildProcess>;
  stop(): Promise<void>;
}

/** Signs the PSP's webhooks in the test stack; the API accepts exactly this one. */
export const TEST_WEBHOOK_SECRET = 'whsec_test_stack';

export interface TestStackOptions {
  pspTimeoutCardMs?: number;
  /** The PSP's chaos settings at start and after DELETE /v1/chaos. */
  pspChaos?: StartServicesOptions['pspChaos'];
  /** The PSP's webhook retry backoff, e.g. shorter for tests of redelivery. */
  pspWebhookDelivery?: StartServicesOptions['pspWebhookDelivery'];
  /** Coupon grants per second across all workers (COUPON_GRANT_RATE_PER_SECOND); default the config's. */
  couponGrantRatePerSecond?: number;
  /** The API's per-client rate limit (requests per minute); default the app's. The contract test's generator needs more. */
  rateLimitPerMinute?: number;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const database = await createTestDatabase('cf_it');
  await seed(database.db);
  const temporal = await startDevServer();
  const services = await startServices({
    databaseUrl: database.url,
    ports: { orders: 0, inventory: 0, coupons: 0, loyalty: 0, payments: 0, psp: 0 },
    pspTimeoutCardMs: options.pspTimeoutCardMs ?? 500,
    pspWebhookSecret: TEST_WEBHOOK_SECRET,
    pspChaos: options.pspChaos,
    pspWebhookDelivery: options.pspWebhookDelivery,
    serviceKeys: TEST_SERVICE_KEYS,
    pspApiKeys: TEST_PSP_API_KEYS,
    faultInjection: true,
  });
  const issuer = await startTestIssuer();
  const connection = await Connection.connect({ address: temporal.address });
  // As api/main.ts builds it: the trace goes on into the workflow if the test installed tracing.
  const client = new Client({ connection, namespace: 'default', dataConverter: testDataConverter(), interceptors: temporalClientInterceptors() });

  const app = createApiApp({
    client,
    namespace: 'default',
    verifier: createTokenVerifier(authConfigFor(issuer)),
    issuerUrl: issuer.url,
    // every test client is 127.0.0.1: a per-address limit would throttle the tests, not a caller
    rateLimitPerMinute: options.rateLimitPerMinute ?? 1_000_000,
    catalogue: createCatalogueClient(services.urls.inventory, { serviceKey: TEST_CREDENTIALS.serviceKey }),
    paymentMethods: createPaymentMethodClient(services.urls.psp, { apiKey: TEST_CREDENTIALS.pspApiKey }),
    db: database.db,
    webhookSecrets: [TEST_WEBHOOK_SECRET],
    checkDatabase: async () => {
      const c = new pg.Client({ connectionString: database.url });
      await c.connect();
      try {
        await c.query('SELECT 1');
      } finally {
        await c.end();
      }
    },
  });
  const api: Server = await new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
  const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  // The API starts after the services, so its address is registered at the PSP now, as on a provider's dashboard.
  const registered = await fetch(`${services.urls.psp}/v1/webhook-endpoint`, {
    method: 'PUT',
    headers: { ...authFor('psp'), 'content-type': 'application/json' },
    body: JSON.stringify({ url: `${apiUrl}/webhooks/psp` }),
  });
  if (!registered.ok) throw new Error(`cannot register the webhook endpoint at the PSP: ${registered.status} ${await registered.text()}`);

  const workers: { worker: Worker; running: Promise<void>; connection: NativeConnection }[] = [];
  const grantsPerSecond = options.couponGrantRatePerSecond ?? loadConfig().couponGrantRatePerSecond;
  const children: ChildProcess[] = [];

  return {
    database,
    temporal,
    client,
    serviceUrls: services.urls,
    apiUrl,
    issuer,
    tokenFor: (role, subject) => issuer.tokenFor(role, subject),
    async startWorker() {
      const workerConnection = await NativeConnection.connect({ address: temporal.address });
      const worker = await createCheckoutWorker({
        connection: workerConnection,
        namespace: 'default',
        dataConverter: testDataConverter(),
        serviceUrls: services.urls,
        credentials: TEST_CREDENTIALS,
        db: database.db,
      });
      const running = worker.run();
      workers.push({ worker, running, connection: workerConnection });
      // the grant activities' own worker, as workers/main.ts runs it beside the checkout worker
      const grantsWorker = await createCouponGrantsWorker({
        connection: workerConnection,
        namespace: 'default',
        dataConverter: testDataConverter(),
        serviceUrls: services.urls,
        credentials: TEST_CREDENTIALS,
        grantsPerSecond,
      });
      workers.push({ worker: grantsWorker, running: grantsWorker.run(), connection: workerConnection });
      return worker;
    },
    async spawnWorkerProcess(extraEnv = {}) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: temporal.address,
          DATABASE_URL: database.url,
          COUPON_GRANT_RATE_PER_SECOND: String(grantsPerSecond),
          // its own metrics port: worker processes of concurrent test files must not collide on the default
          WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
          ...serviceUrlEnv(services.urls),
          ...TEST_KEYS_ENV,
          // the ring the stack's client encrypts with, read by workers/main.ts through the config
          PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_KEYS,
          ...extraEnv,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      // workers/main.ts prints a line containing "ready" once it polls
      await new Promise<void>((resolve, reject) => {
        let seen = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          if (/ready/i.test(seen)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`worker process exited early (${code}): ${seen}`)));
      });
      return child;
    },
    async stop() {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      for (const { worker, running } of workers) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => {});
      }
      for (const connection of new Set(workers.map((w) => w.connection))) {
        await connection.close();
      }
      api.closeAllConnections();
      await new Promise((resolve) => api.close(resolve));
      await issuer.stop();
      await connection.close();
      await services.close();
      await temporal.stop();
      await database.drop();
    },
  };
}
