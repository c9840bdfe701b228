// Starts the six downstream services in one process, each its own Express app on
// its own port, sharing one database client. Payments is wired to the PSP's
// actual address, so ephemeral ports (0) work; the PSP's background loop
// (decisions, webhooks) is stopped by close() before the database client. Run
// directly (`npm run services`) it uses the ports from loadConfig(), refuses to
// start in production on development secrets, and stops cleanly on SIGINT/SIGTERM.
import { fileURLToPath } from 'node:url';
import { loadConfig, exitUnlessProductionReady, type ServiceUrls } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import { createLogger } from '../lib/logger.ts';
import { installTracing } from '../lib/telemetry.ts';
import type { ServiceName } from './common/app.ts';
import { listen, type RunningServer } from './common/server.ts';
import { createCouponsApp } from './coupons/app.ts';
import { createInventoryApp } from './inventory/app.ts';
import { createLoyaltyApp } from './loyalty/app.ts';
import { createOrdersApp } from './orders/app.ts';
import { createPaymentsApp } from './payments/app.ts';
import { createPspApp } from './psp/app.ts';
import type { ChaosSettings } from './psp/chaos.ts';
import { DEFAULT_TIMEOUT_CARD_MS } from './psp/payments.ts';
import { type DeliveryOptions, setWebhookEndpoint } from './psp/webhooks.ts';

export interface StartServicesOptions {
  databaseUrl: string;
  /** Missing services use the loadConfig() defaults; 0 picks a free port. */
  ports?: Partial<Record<ServiceName, number>>;
  host?: string;
  /** How long the PSP's timeout card holds a request (default PSP_TIMEOUT_CARD_MS or 30 s). */
  pspTimeoutCardMs?: number;
  /** Deadline for payments' calls to the PSP (default 10 s). */
  pspRequestTimeoutMs?: number;
  /** Registered at start as the PSP's webhook endpoint (else the one stored earlier, if any). */
  pspWebhookUrl?: string;
  /** The PSP's webhook signing secret (default PSP_WEBHOOK_SECRET or whsec_dev_secret). */
  pspWebhookSecret?: string;
  /** The PSP's chaos settings at start and after DELETE /v1/chaos (e.g. a shorter processingDelayMs). */
  pspChaos?: Partial<ChaosSettings>;
  /** The PSP's webhook retry backoff (retryBaseMs, retryMaxMs) and per-attempt timeout. */
  pspWebhookDelivery?: Partial<DeliveryOptions>;
  /** Keys the five services accept from their callers (default SERVICE_API_KEYS or the dev key). */
  serviceKeys?: readonly string[];
  /** The simulator's secret API keys; payments sends the first (default PSP_API_KEYS or the dev key). */
  pspApiKeys?: readonly string[];
  /** Serve `/_faults` and the simulator's `/v1/chaos` (default FAULT_INJECTION=on, else off). */
  faultInjection?: boolean;
}

export interface RunningServices {
  urls: ServiceUrls;
  close(): Promise<void>;
}

export async function startServices(opts: StartServicesOptions): Promise<RunningServices> {
  const config = loadConfig();
  const host = opts.host ?? '127.0.0.1';
  const ports = { ...config.servicePorts, ...opts.ports };
  const faultInjection = opts.faultInjection ?? config.faultInjection;
  const pspApiKeys = opts.pspApiKeys ?? config.pspApiKeys;
  const common = { acceptedKeys: opts.serviceKeys ?? config.serviceKeys, faultInjection };
  const db = createDb(opts.databaseUrl);
  const running: RunningServer[] = [];
  let stopPsp = async () => {};

  const start = async (app: Parameters<typeof listen>[0], port: number) => {
    const server = await listen(app, port, host);
    running.push(server);
    return server.url;
  };

  try {
    if (opts.pspWebhookUrl !== undefined) await setWebhookEndpoint(db, opts.pspWebhookUrl);
    const pspApp = createPspApp(db, {
      acceptedKeys: pspApiKeys,
      faultInjection,
      timeoutCardMs: opts.pspTimeoutCardMs ?? DEFAULT_TIMEOUT_CARD_MS,
      chaos: { ...opts.pspChaos, ...(opts.pspWebhookSecret === undefined ? {} : { secret: opts.pspWebhookSecret }) },
      delivery: opts.pspWebhookDelivery,
    });
    stopPsp = pspApp.close;
    const psp = await start(pspApp.app, ports.psp);
    // inventory first: orders prices every order from its catalogue
    const inventory = await start(createInventoryApp(db, common), ports.inventory);
    const urls: ServiceUrls = {
      orders: await start(createOrdersApp(db, { ...common, inventoryUrl: inventory, serviceKey: common.acceptedKeys[0]! }), ports.orders),
      inventory,
      coupons: await start(createCouponsApp(db, common), ports.coupons),
      loyalty: await start(createLoyaltyApp(db, common), ports.loyalty),
      payments: await start(
        createPaymentsApp(db, { ...common, pspUrl: psp, pspApiKey: pspApiKeys[0]!, pspTimeoutMs: opts.pspRequestTimeoutMs }),
        ports.payments,
      ),
      psp,
    };
    return {
      urls,
      async close() {
        // the PSP's background loop first: it must not outlive the database client
        await stopPsp();
        await Promise.all(running.map((server) => server.close()));
        await db.$disconnect();
      },
    };
  } catch (err) {
    await stopPsp();
    await Promise.all(running.map((server) => server.close().catch(() => {})));
    await db.$disconnect();
    throw err;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const log = createLogger('services');
  exitUnlessProductionReady('services', (message) => log.error(message));
  const config = loadConfig();
  const tracing = installTracing({ serviceName: 'services', otlpEndpoint: config.otlpEndpoint });
  const services = await startServices({
    databaseUrl: config.databaseUrl,
    ports: config.servicePorts,
    pspTimeoutCardMs: config.psp.timeoutCardMs,
    pspWebhookSecret: config.psp.webhookSecret,
  });
  for (const [name, url] of Object.entries(services.urls)) log.info(`${name} listening on ${url}`, { url });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: closing`);
    await services.close();
    await tracing.shutdown();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
