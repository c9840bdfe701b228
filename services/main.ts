// Starts the six downstream services in one process, each its own Express app on
// its own port, sharing one database client. Payments is wired to the PSP's
// actual address, so ephemeral ports (0) work. Run directly (`npm run services`)
// it uses the ports from loadConfig() and stops cleanly on SIGINT/SIGTERM.
import { fileURLToPath } from 'node:url';
import { loadConfig, type ServiceUrls } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import type { ServiceName } from './common/app.ts';
import { listen, type RunningServer } from './common/server.ts';
import { createCouponsApp } from './coupons/app.ts';
import { createInventoryApp } from './inventory/app.ts';
import { createLoyaltyApp } from './loyalty/app.ts';
import { createOrdersApp } from './orders/app.ts';
import { createPaymentsApp } from './payments/app.ts';
import { createPspApp } from './psp/app.ts';
import { DEFAULT_TIMEOUT_CARD_MS } from './psp/payments.ts';

export interface StartServicesOptions {
  databaseUrl: string;
  /** Missing services use the loadConfig() defaults; 0 picks a free port. */
  ports?: Partial<Record<ServiceName, number>>;
  host?: string;
  /** How long the PSP's timeout card holds a request (default PSP_TIMEOUT_CARD_MS or 30 s). */
  pspTimeoutCardMs?: number;
  /** Deadline for payments' calls to the PSP (default 10 s). */
  pspRequestTimeoutMs?: number;
}

export interface RunningServices {
  urls: ServiceUrls;
  close(): Promise<void>;
}

export async function startServices(opts: StartServicesOptions): Promise<RunningServices> {
  const host = opts.host ?? '127.0.0.1';
  const ports = { ...loadConfig().servicePorts, ...opts.ports };
  const db = createDb(opts.databaseUrl);
  const running: RunningServer[] = [];

  const start = async (app: Parameters<typeof listen>[0], port: number) => {
    const server = await listen(app, port, host);
    running.push(server);
    return server.url;
  };

  try {
    const psp = await start(
      createPspApp(db, { timeoutCardMs: opts.pspTimeoutCardMs ?? envTimeoutCardMs() ?? DEFAULT_TIMEOUT_CARD_MS }),
      ports.psp,
    );
    const urls: ServiceUrls = {
      orders: await start(createOrdersApp(db), ports.orders),
      inventory: await start(createInventoryApp(db), ports.inventory),
      coupons: await start(createCouponsApp(db), ports.coupons),
      loyalty: await start(createLoyaltyApp(db), ports.loyalty),
      payments: await start(createPaymentsApp(db, { pspUrl: psp, pspTimeoutMs: opts.pspRequestTimeoutMs }), ports.payments),
      psp,
    };
    return {
      urls,
      async close() {
        await Promise.all(running.map((server) => server.close()));
        await db.$disconnect();
      },
    };
  } catch (err) {
    await Promise.all(running.map((server) => server.close().catch(() => {})));
    await db.$disconnect();
    throw err;
  }
}

function envTimeoutCardMs(): number | undefined {
  const raw = process.env.PSP_TIMEOUT_CARD_MS;
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`PSP_TIMEOUT_CARD_MS must be a non-negative integer, got "${raw}"`);
  return value;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadConfig();
  const services = await startServices({ databaseUrl: config.databaseUrl, ports: config.servicePorts });
  for (const [name, url] of Object.entries(services.urls)) console.log(`[services] ${name.padEnd(9)} listening on ${url}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`[services] ${signal}: closing`);
    await services.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
