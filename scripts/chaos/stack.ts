// The stack a chaos run owns, so it can break any part of it: a fresh database (migrated and
// seeded), the Temporal dev server with a state file (stopped and started again on the same
// port, keeping its runs), the services, the worker and the API as child processes, and the
// development issuer in this process for tokens. Secrets are made up per run. stop() leaves
// nothing behind: children killed, dev server stopped, database dropped, logs removed unless kept.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { DEFAULT_AUDIENCE, serviceUrlEnv, type ServiceUrls } from '../../lib/config.ts';
import { temporalDataConverter } from '../../lib/data-converter.ts';
import { createDb, type Db } from '../../lib/db.ts';
import { startDevIssuer, type DevIssuer } from '../../lib/dev-issuer.ts';
import { parseKeyRing } from '../../lib/payload-codec.ts';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import type { Role } from '../../shared/permissions.ts';
import { dropDatabase, ensureDatabase, migrate } from '../migrate.ts';
import { seed } from '../seed.ts';
import { killAllChildren, killChild, startChild, stopChild, type Child } from './children.ts';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
/** How the services' connections name themselves in pg_stat_activity (libpq's PGAPPNAME, honoured by node-postgres). */
export const SERVICES_APPLICATION_NAME = 'chaos-services';
const START_TIMEOUT_MS = 90_000;

export interface ChaosStackOptions {
  /** How long the PSP's timeout card holds a request: short, so such checkouts give up within the run. */
  pspTimeoutCardMs: number;
  log: (message: string) => void;
}

export class ChaosStack {
  readonly workDir = mkdtempSync(path.join(os.tmpdir(), 'chaos-'));
  readonly databaseName = `cf_chaos_${process.pid}_${randomBytes(4).toString('hex')}`;
  readonly databaseUrl: string;
  readonly secrets = {
    serviceKey: `svc_chaos_${randomBytes(8).toString('hex')}`,
    pspApiKey: `sk_chaos_${randomBytes(8).toString('hex')}`,
    webhookSecret: `whsec_chaos_${randomBytes(8).toString('hex')}`,
    payloadKeys: `chaos:${randomBytes(32).toString('base64')}`,
  };
  db!: Db;
  client!: Client;
  apiUrl = '';
  serviceUrls!: ServiceUrls;
  temporalAddress = '';
  workerStarts = 0;
  /** Processes that died without being killed by the harness (each was started again): a defect, not a fault. */
  readonly crashes: string[] = [];

  private connection: Connection | undefined;
  private devServer: DevServer | undefined;
  private temporalPort = 0;
  private issuer: DevIssuer | undefined;
  private services: Child | undefined;
  private worker: Child | undefined;
  private api: Child | undefined;
  private workerWanted = false;
  private workerRestarting: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: ChaosStackOptions) {
    const url = new URL(ADMIN_URL);
    url.pathname = `/${this.databaseName}`;
    this.databaseUrl = url.toString();
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    log(`database ${this.databaseName}: creating, migrating, seeding`);
    await ensureDatabase(this.databaseUrl);
    await migrate(this.databaseUrl);
    this.db = createDb(this.databaseUrl);
    await seed(this.db);

    this.temporalPort = await freePort();
    await this.startDevServer();
    this.connection = await Connection.connect({ address: this.temporalAddress });
    this.client = new Client({
      connection: this.connection,
      namespace: 'default',
      dataConverter: temporalDataConverter(parseKeyRing(this.secrets.payloadKeys)),
    });
    this.issuer = await startDevIssuer({ port: 0, audience: DEFAULT_AUDIENCE });

    const ports = {
      ORDERS_PORT: await freePort(), INVENTORY_PORT: await freePort(), COUPONS_PORT: await freePort(),
      LOYALTY_PORT: await freePort(), PAYMENTS_PORT: await freePort(), PSP_PORT: await freePort(),
    };
    const local = (port: number) => `http://127.0.0.1:${port}`;
    this.serviceUrls = {
      orders: local(ports.ORDERS_PORT), inventory: local(ports.INVENTORY_PORT), coupons: local(ports.COUPONS_PORT),
      loyalty: local(ports.LOYALTY_PORT), payments: local(ports.PAYMENTS_PORT), psp: local(ports.PSP_PORT),
    };
    log('starting services, API and worker (child processes)');
    const servicesEnv = {
      ...this.baseEnv(), ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      FAULT_INJECTION: 'on', PSP_TIMEOUT_CARD_MS: String(this.opts.pspTimeoutCardMs), PGAPPNAME: SERVICES_APPLICATION_NAME,
    };
    await this.supervise('services', () => startChild({ name: 'services', entry: 'services/main.ts', env: servicesEnv, logDir: this.workDir, ready: /psp listening on/, timeoutMs: START_TIMEOUT_MS }));
    const apiPort = await freePort();
    this.apiUrl = local(apiPort);
    const apiEnv = { ...this.baseEnv(), API_PORT: String(apiPort), AUTH_ISSUER: this.issuer.url, API_RATE_LIMIT_PER_MINUTE: '1000000', PGAPPNAME: 'chaos-api' };
    await this.supervise('api', () => startChild({ name: 'api', entry: 'api/main.ts', env: apiEnv, logDir: this.workDir, ready: /listening on/, timeoutMs: START_TIMEOUT_MS }));
    // The provider learns where to send its notifications, as on its dashboard.
    const registered = await fetch(`${this.serviceUrls.psp}/v1/webhook-endpoint`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.secrets.pspApiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${this.apiUrl}/webhooks/psp` }),
    });
    if (!registered.ok) throw new Error(`cannot register the webhook endpoint at the PSP: ${registered.status} ${await registered.text()}`);
    this.workerWanted = true;
    await this.startWorker();
  }

  tokenFor(role: Role | Role[], subject: string): Promise<string> {
    return this.issuer!.tokenFor(role, subject);
  }

  /** SIGKILL the worker and start a new one (which bundles the workflows again before it polls). */
  async killWorker(): Promise<void> {
    // one that died on its own may be starting again: kill the one that comes up
    while (this.workerRestarting) await this.workerRestarting;
    const worker = this.worker;
    if (!worker) throw new Error('no worker to kill');
    this.worker = undefined;
    await killChild(worker);
    await this.startWorker();
  }

  /** Stops the dev server (state kept in its file), waits `downMs`, starts it again on the same port. */
  async restartDevServer(downMs: number): Promise<void> {
    await this.devServer?.stop();
    this.devServer = undefined;
    await new Promise((resolve) => setTimeout(resolve, downMs));
    if (this.stopped) return;
    const server = await this.startDevServer();
    // the run was stopped meanwhile: this one would outlive it
    if (this.stopped) await server.stop();
  }

  /** pg_terminate_backend on every connection the services hold; returns how many were cut. */
  async terminateServiceConnections(): Promise<number> {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ terminated: boolean }>(
        'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
        [this.databaseName, SERVICES_APPLICATION_NAME],
      );
      return rows.filter((r) => r.terminated).length;
    } finally {
      await admin.end();
    }
  }

  /** The PSP's own API key, for its /v1/chaos; the services' key for /_faults and /metrics reads. */
  authHeader(service: keyof ServiceUrls): Record<string, string> {
    return { authorization: `Bearer ${service === 'psp' ? this.secrets.pspApiKey : this.secrets.serviceKey}` };
  }

  /** Kills and cleans up everything this stack started. Safe to call twice and after a failed start. */
  async stop({ keepLogs }: { keepLogs: boolean }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.workerWanted = false;
    await Promise.allSettled([stopChild(this.api, 5_000), stopChild(this.worker, 5_000)]);
    await stopChild(this.services, 5_000);
    killAllChildren();
    await this.connection?.close().catch(() => {});
    await this.issuer?.stop().catch(() => {});
    await this.devServer?.stop().catch(() => {});
    await this.db?.$disconnect().catch(() => {});
    await dropDatabase(this.databaseUrl).catch((err) => this.opts.log(`could not drop database ${this.databaseName}: ${(err as Error).message}`));
    if (!keepLogs) rmSync(this.workDir, { recursive: true, force: true });
  }

  /**
   * Starts the services or the API and, should it die on its own, records the crash and starts
   * it again (same ports and settings), as a process supervisor would.
   */
  private async supervise(name: 'services' | 'api', start: () => Promise<Child>): Promise<void> {
    const child = await start();
    this[name] = child;
    child.process.once('exit', (code, signal) => {
      if (this.stopped) return;
      this.crashes.push(`${name} exited on its own (${signal ?? `code ${code}`}); see ${child.logFile}`);
      this.opts.log(`${name} CRASHED (${signal ?? `code ${code}`}); starting it again`);
      const restart = async (): Promise<void> => {
        try {
          await this.supervise(name, start);
        } catch (err) {
          if (this.stopped) return;
          this.opts.log(`${name} restart failed (${(err as Error).message}); trying again`);
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          return restart();
        }
      };
      void restart();
    });
  }

  /** For a synchronous `exit` handler: SIGKILL every process this stack started (the database stays). */
  killEverythingNow(): void {
    killAllChildren();
    this.devServer?.process.kill('SIGKILL');
  }

  private baseEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      DATABASE_URL: this.databaseUrl,
      TEMPORAL_ADDRESS: this.temporalAddress,
      ...(this.serviceUrls ? serviceUrlEnv(this.serviceUrls) : {}),
      SERVICE_API_KEYS: this.secrets.serviceKey,
      PSP_API_KEYS: this.secrets.pspApiKey,
      PSP_WEBHOOK_SECRET: this.secrets.webhookSecret,
      PSP_WEBHOOK_SECRETS: this.secrets.webhookSecret,
      PAYLOAD_ENCRYPTION_KEYS: this.secrets.payloadKeys,
    };
  }

  private async startDevServer(): Promise<DevServer> {
    const server = await startDevServer({
      port: this.temporalPort,
      dbFilename: path.join(this.workDir, 'temporal.db'),
      logFile: path.join(this.workDir, 'temporal.log'),
    });
    this.devServer = server;
    this.temporalAddress = server.address;
    return server;
  }

  /**
   * Starts a worker process, trying again while it cannot (say, the dev server is down just
   * then); one that dies on its own (not killed by us) is started again.
   */
  private async startWorker(): Promise<void> {
    const starting = (async () => {
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          return await startChild({
            name: 'worker',
            entry: 'workers/main.ts',
            env: { ...this.baseEnv(), WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`, PGAPPNAME: 'chaos-worker' },
            logDir: this.workDir,
            ready: /worker ready/,
            timeoutMs: START_TIMEOUT_MS,
          });
        } catch (err) {
          if (!this.workerWanted || Date.now() > deadline) throw err;
          this.opts.log(`worker start ${attempt} failed (${(err as Error).message}); trying again`);
          await new Promise((resolve) => setTimeout(resolve, 2_000));
        }
      }
    })();
    this.workerRestarting = starting.then(() => {}, () => {});
    try {
      const worker = await starting;
      this.workerStarts += 1;
      this.worker = worker;
      worker.process.once('exit', (code, signal) => {
        if (this.worker !== worker || !this.workerWanted) return;
        this.opts.log(`worker exited on its own (${signal ?? code}); starting another`);
        this.worker = undefined;
        void this.startWorker().catch((err) => this.opts.log(`worker restart failed: ${(err as Error).message}`));
      });
    } finally {
      this.workerRestarting = undefined;
    }
  }
}
