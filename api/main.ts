// `npm run api`: the HTTP API process. It starts serving even while Temporal is
// still unreachable (checkout calls answer 503 `temporal_unavailable`, /healthz
// says which dependency is down) and keeps probing Temporal until it answers.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Client, type Connection } from '@temporalio/client';
import { exitUnlessProductionReady, loadConfig, temporalAddress, type Config } from '../lib/config.ts';
import { temporalDataConverter } from '../lib/data-converter.ts';
import { createDb } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { EncryptionCodec } from '../lib/payload-codec.ts';
import { installTracing, temporalClientInterceptors } from '../lib/telemetry.ts';
import { createApiApp } from './app.ts';
import { createTokenVerifier } from './auth.ts';
import { createCatalogueClient } from './catalogue.ts';
import { createDatabaseCheck } from './database-check.ts';
import { createPaymentMethodClient } from './payment-methods.ts';
import { connectTemporal, errorMessage, isTimeout } from './temporal.ts';

const logger = createLogger('api');
const log = (message: string) => logger.info(message);
const PROBE_TIMEOUT_MS = 5_000;

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

export async function startApi(config: Config = loadConfig()): Promise<RunningApi> {
  const address = temporalAddress(config);
  const connection = connectTemporal(address);
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: temporalDataConverter(config.payloadKeys), interceptors: temporalClientInterceptors() });
  const database = createDatabaseCheck(config.databaseUrl);
  const db = createDb(config.databaseUrl);
  const watcher = watchTemporal(connection, address);

  const app = createApiApp({
    client,
    namespace: config.temporal.namespace,
    checkDatabase: database.check,
    temporalUiUrl: config.temporal.uiUrl,
    db,
    webhookSecrets: config.webhook.secrets,
    webhookToleranceSeconds: config.webhook.toleranceSeconds,
    refundPolicy: config.refundPolicy,
    verifier: createTokenVerifier(config.auth),
    issuerUrl: config.auth.issuer,
    opsSignIn: { clientId: config.auth.opsClientId, audience: config.auth.audience },
    rateLimitPerMinute: config.apiRateLimitPerMinute,
    catalogue: createCatalogueClient(config.serviceUrls.inventory, { serviceKey: config.serviceKeys[0]! }),
    paymentMethods: createPaymentMethodClient(config.serviceUrls.psp, { apiKey: config.pspApiKeys[0]! }),
    fingerprintSecret: config.fingerprintSecret,
    payloadCodec: new EncryptionCodec(config.payloadKeys),
    codecCorsOrigins: config.codecCorsOrigins,
  });
  let server: Server;
  try {
    server = await listen(app, config.apiPort);
  } catch (err) {
    await watcher.stop();
    await Promise.allSettled([connection.close(), database.close(), db.$disconnect()]);
    throw new Error(`cannot listen on port ${config.apiPort}: ${(err as Error).message}`, { cause: err });
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  log(`listening on ${url} (Temporal ${address}, namespace ${config.temporal.namespace})`);

  return {
    url,
    async close() {
      await watcher.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.allSettled([connection.close(), database.close(), db.$disconnect()]);
    },
  };
}

function listen(app: ReturnType<typeof createApiApp>, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, (err?: Error) => (err ? reject(err) : resolve(server)));
  });
}

/** Probes Temporal with backoff until it first answers, logging each failure. */
function watchTemporal(connection: Connection, address: string): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let delayMs = 1_000;
  const attempt = async () => {
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    try {
      await connection.withDeadline(deadline, () => connection.workflowService.getSystemInfo({}));
      if (!stopped) log(`connected to Temporal at ${address}`);
    } catch (err) {
      if (stopped) return;
      const why = isTimeout(err, deadline) ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : errorMessage(err);
      logger.warn(`Temporal at ${address} is not reachable yet (${why}); retrying in ${delayMs / 1000} s`);
      timer = setTimeout(() => (inFlight = attempt()), delayMs);
      delayMs = Math.min(delayMs * 2, 30_000);
    }
  };
  inFlight = attempt();
  return {
    // Waits for a probe in flight: closing the connection under it would leave the SDK's
    // retry timer to fire on a closed channel ("Channel has been shut down", uncaught).
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight;
    },
  };
}

async function main(): Promise<void> {
  exitUnlessProductionReady('api', (message) => logger.error(message));
  const config = loadConfig();
  const tracing = installTracing({ serviceName: 'api', otlpEndpoint: config.otlpEndpoint });
  let api: RunningApi;
  try {
    api = await startApi(config);
  } catch (err) {
    logger.error('failed to start', { err });
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: closing`);
    const force = setTimeout(() => {
      logger.warn('still closing after 10 s: exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    await api.close();
    log('closed');
    await tracing.shutdown();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
