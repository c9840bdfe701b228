// The payment-provider simulator: its HTTP API (behind its own secret API keys,
// `options.acceptedKeys`) plus the background loop that decides pending payments
// and refunds and delivers webhooks. `close()` stops the loop
// (the caller closes the HTTP server and the database client).
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { Express } from 'express';
import type { Db } from '../../lib/db.ts';
import { createLogger } from '../../lib/logger.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { Chaos, DEFAULT_CHAOS, type ChaosSettings } from './chaos.ts';
import { DEFAULT_TIMEOUT_CARD_MS, decideDuePayments } from './payments.ts';
import { startPoller } from './poller.ts';
import { decideDueRefunds } from './refunds.ts';
import { pspRoutes } from './routes.ts';
import { DEFAULT_DELIVERY_OPTIONS, type DeliveryOptions, deliverDueEvents } from './webhooks.ts';

export const DEFAULT_POLL_INTERVAL_MS = 50;

export interface PspAppOptions extends ServiceAppOptions {
  /** How long the timeout test card holds a request before answering 504 (default 30 s). */
  timeoutCardMs?: number;
  /** Chaos settings at start and after DELETE /v1/chaos (defaults: README). */
  chaos?: Partial<ChaosSettings>;
  /** Webhook retry backoff and per-attempt timeout. */
  delivery?: Partial<DeliveryOptions>;
  /** How often the background loop looks for due decisions and deliveries (default 50 ms). */
  pollIntervalMs?: number;
}

export interface PspApp {
  app: Express;
  /** Stops the background loop and waits for its in-flight work. */
  close(): Promise<void>;
}

export function createPspApp(db: Db, options: PspAppOptions = {}): PspApp {
  const timeoutCardMs = options.timeoutCardMs ?? DEFAULT_TIMEOUT_CARD_MS;
  const chaos = new Chaos({ ...DEFAULT_CHAOS, ...options.chaos });
  const delivery = { ...DEFAULT_DELIVERY_OPTIONS, ...options.delivery };
  const app = createServiceApp('psp', db, pspRoutes(db, { timeoutCardMs, chaos, faultInjection: options.faultInjection ?? false }), options);
  const log = createLogger('psp');
  // The simulator stands in for an external provider: its background loop (a database poll every
  // 50 ms) is not part of our traces, so it runs with tracing suppressed.
  const poller = context.with(suppressTracing(context.active()), () =>
    startPoller(
      {
        decisions: () => decideDuePayments(db, chaos.current),
        refunds: () => decideDueRefunds(db, chaos.current),
        deliveries: (signal) => deliverDueEvents(db, chaos.current, delivery, signal),
      },
      options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
      (message, err) => log.error(message, { err }),
    ),
  );
  return { app, close: () => poller.stop() };
}
