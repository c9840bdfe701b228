// `bin/stack`: the whole system on one machine. Temporal dev server with Web UI
// (state kept in .data/temporal.db, so a restart keeps running workflows) unless
// TEMPORAL_ADDRESS points at a cluster; migrations; seed data; the six services;
// the worker and the API as child processes. Ctrl-C stops everything, the worker
// first draining its in-flight tasks.
import { spawn, type ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, serviceUrlEnv, temporalAddress, DEFAULT_TEMPORAL_PORT } from '../lib/config.ts';
import { temporalDataConverter } from '../lib/data-converter.ts';
import { createDb } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { installTracing } from '../lib/telemetry.ts';
import { ensureReconciliationSchedule } from '../lib/schedules.ts';
import { startDevServer, type DevServer } from '../lib/temporal-dev-server.ts';
import { startDevIssuer, type DevIssuer } from '../lib/dev-issuer.ts';
import { startServices } from '../services/main.ts';
import { ensureDatabase, migrate } from './migrate.ts';
import { seed } from './seed.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const config = loadConfig();
const logger = createLogger('stack');
const log = (message: string) => logger.info(message);
// The six services run in this process (the worker and the API in their own).
const tracing = installTracing({ serviceName: 'services', otlpEndpoint: config.otlpEndpoint });

// Without AUTH_ISSUER the API trusts the development identity provider at config.auth.issuer:
// it runs in this process, started first so a busy port stops the stack before anything else runs.
let devIssuer: DevIssuer | undefined;
if (!process.env.AUTH_ISSUER) {
  devIssuer = await startDevIssuer({ port: Number(new URL(config.auth.issuer).port), audience: config.auth.audience });
}

let devServer: DevServer | undefined;
if (!config.temporal.address) {
  const uiPort = Number(new URL(config.temporal.uiUrl).port);
  log(`starting Temporal dev server on 127.0.0.1:${DEFAULT_TEMPORAL_PORT} (state in .data/temporal.db)`);
  devServer = await startDevServer({
    port: DEFAULT_TEMPORAL_PORT,
    uiPort,
    // the UI shows payloads decrypted only to a browser that passes an operator's token (README "Encrypted payloads")
    uiCodecEndpoint: `http://127.0.0.1:${config.apiPort}/codec`,
    dbFilename: path.join(ROOT, '.data/temporal.db'),
    logFile: path.join(ROOT, '.data/temporal.log'),
  });
}
const address = temporalAddress(config);

await ensureDatabase(config.databaseUrl);
const applied = await migrate(config.databaseUrl);
log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
const db = createDb(config.databaseUrl);
await seed(db);
await db.$disconnect();
log('seed data in place');

// The PSP notifies the API (started below) of every payment decision; both sides default to the
// same dev secret (PSP_WEBHOOK_SECRET signs, PSP_WEBHOOK_SECRETS verifies).
const webhookUrl = `http://127.0.0.1:${config.apiPort}/webhooks/psp`;
const services = await startServices({
  databaseUrl: config.databaseUrl,
  ports: config.servicePorts,
  pspWebhookUrl: webhookUrl,
  pspWebhookSecret: config.psp.webhookSecret,
  pspTimeoutCardMs: config.psp.timeoutCardMs,
  // the local stack is for trying failures out: /_faults and /v1/chaos are served (off by default elsewhere)
  faultInjection: true,
});
const childEnv = {
  ...process.env,
  TEMPORAL_ADDRESS: address,
  DATABASE_URL: config.databaseUrl,
  ...serviceUrlEnv(services.urls),
  // Everything local comes from one address, 127.0.0.1: the API's per-IP limit (600/min by default,
  // meant for the internet) would throttle `npm run bench` and a busy ops page, not an attacker. A
  // development default that stays out of the way, unless API_RATE_LIMIT_PER_MINUTE is set.
  API_RATE_LIMIT_PER_MINUTE: process.env.API_RATE_LIMIT_PER_MINUTE || '100000',
};

function startChild(name: string, entry: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], {
    env: childEnv,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited unexpectedly (${signal ?? code}); stopping the stack`);
      void stop(1);
    }
  });
  return child;
}

let stopping = false;
const worker = startChild('worker', 'workers/main.ts');
const api = startChild('api', 'api/main.ts');

// Reconciliation runs on a Temporal Schedule; created once, then left as an operator tunes it.
{
  const every = config.reconciliationEvery;
  const connection = await Connection.connect({ address });
  // the schedule's action arguments are payloads too: encrypted like everything the workflows see
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: temporalDataConverter(config.payloadKeys) });
  const created = await ensureReconciliationSchedule(client, { every });
  await connection.close();
  log(created ? `reconciliation schedule created (every ${every})` : 'reconciliation schedule already in place');
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('stopping: api, worker (draining in-flight tasks), services, Temporal');
  api.kill('SIGTERM');
  worker.kill('SIGTERM');
  await Promise.all([exitOf(api), exitOf(worker)]);
  await services.close();
  await devIssuer?.stop();
  await tracing.shutdown();
  await devServer?.stop();
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

log(`API            http://127.0.0.1:${config.apiPort}`);
log(`PSP webhooks → ${webhookUrl}`);
if (devIssuer) log(`Identity provider ${devIssuer.url} (development issuer; a token: npm run -s token -- <role>[,<role>] <subject>)`);
else log(`Identity provider ${config.auth.issuer}`);
log(`Temporal       ${address} (namespace ${config.temporal.namespace})`);
if (devServer?.uiUrl) log(`Temporal Web UI ${devServer.uiUrl}/namespaces/${config.temporal.namespace}/workflows`);
for (const [name, url] of Object.entries(services.urls)) log(`${name.padEnd(14)} ${url}`);
log(`metrics        http://127.0.0.1:${config.apiPort}/metrics (API, services on their ports), http://${config.workerMetricsAddress}/metrics (worker)`);
log('Ctrl-C stops everything');
