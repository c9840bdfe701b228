// The public HTTP API: checkouts are Temporal workflows; this app starts, reads
// and cancels them, and renders every failure in the shared error shape.
import express from 'express';
import type { Client } from '@temporalio/client';
import { errorMiddleware, notFound } from '../lib/http-errors.ts';
import { observeHttp } from '../lib/http-observability.ts';
import { createLogger } from '../lib/logger.ts';
import { metricsHandler } from '../lib/metrics.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { checkoutRoutes } from './routes/checkouts.ts';
import { couponRoutes } from './routes/coupons.ts';
import { healthRoutes } from './routes/health.ts';
import { operationsRoutes } from './routes/operations.ts';
import { reconciliationRoutes } from './routes/reconciliation.ts';
import { refundRoutes } from './routes/refunds.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { DEFAULT_TOLERANCE_SECONDS } from './webhook-signature.ts';
import type { Db } from '../lib/db.ts';
import type { RefundPolicy } from '../shared/refunds.ts';

export interface ApiTimeouts {
  /** Deadline for all Temporal calls made for one request. */
  temporalMs: number;
  /** Deadline for the `state` query, which only a running worker can answer. */
  stateQueryMs: number;
  /** Deadline for each /healthz probe. */
  healthMs: number;
}

export const DEFAULT_API_TIMEOUTS: ApiTimeouts = { temporalMs: 5_000, stateQueryMs: 2_000, healthMs: 2_000 };

export interface ApiDeps {
  client: Client;
  taskQueue?: string;
  /** Resolves when the database answers; rejects (with the reason) when it does not. */
  checkDatabase: () => Promise<void>;
  /** Base URL of the Temporal Web UI, for the `webUiUrl` links; omit for none. */
  temporalUiUrl?: string;
  namespace: string;
  timeouts?: Partial<ApiTimeouts>;
  /** Our own database (webhook events, reconciliation report); without it /webhooks/psp and /reconciliation are absent. */
  db?: Db;
  /** Secrets that sign the provider's webhooks (several while rotating); with `db`, POST /webhooks/psp is served. */
  webhookSecrets?: string[];
  /** How far a webhook's signed timestamp may be from now (default 300 s). */
  webhookToleranceSeconds?: number;
  /** Overrides of the Refund workflow's default policy for refunds started by POST /refunds. */
  refundPolicy?: Partial<RefundPolicy>;
}

export function createApiApp(deps: ApiDeps): express.Express {
  const timeouts = { ...DEFAULT_API_TIMEOUTS, ...deps.timeouts };
  const app = express();
  app.disable('x-powered-by');
  // First: every request gets its span, log context and duration, whichever route answers it.
  app.use(observeHttp('api'));
  app.get('/metrics', metricsHandler());
  // Before the JSON parser: the webhook signature is checked over the raw bytes.
  if (deps.db && deps.webhookSecrets?.length) {
    app.use(
      webhookRoutes({
        client: deps.client,
        db: deps.db,
        secrets: deps.webhookSecrets,
        toleranceSeconds: deps.webhookToleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
        temporalTimeoutMs: timeouts.temporalMs,
      }),
    );
  }
  // Before the 64 kB JSON parser: a distribution's recipient list is larger (the routes parse their own bodies).
  app.use(
    couponRoutes({
      client: deps.client,
      db: deps.db,
      taskQueue: deps.taskQueue ?? CHECKOUT_TASK_QUEUE,
      temporalTimeoutMs: timeouts.temporalMs,
      stateQueryTimeoutMs: timeouts.stateQueryMs,
    }),
  );
  app.use(express.json({ limit: '64kb' }));

  app.use(
    healthRoutes({
      client: deps.client,
      namespace: deps.namespace,
      checkDatabase: deps.checkDatabase,
      timeoutMs: timeouts.healthMs,
    }),
  );
  app.use(
    checkoutRoutes({
      client: deps.client,
      namespace: deps.namespace,
      taskQueue: deps.taskQueue ?? CHECKOUT_TASK_QUEUE,
      temporalUiUrl: deps.temporalUiUrl,
      temporalTimeoutMs: timeouts.temporalMs,
      stateQueryTimeoutMs: timeouts.stateQueryMs,
    }),
  );

  app.use(
    refundRoutes({
      client: deps.client,
      namespace: deps.namespace,
      taskQueue: deps.taskQueue ?? CHECKOUT_TASK_QUEUE,
      temporalUiUrl: deps.temporalUiUrl,
      temporalTimeoutMs: timeouts.temporalMs,
      stateQueryTimeoutMs: timeouts.stateQueryMs,
      policy: deps.refundPolicy,
    }),
  );

  app.use(
    operationsRoutes({
      client: deps.client,
      namespace: deps.namespace,
      temporalUiUrl: deps.temporalUiUrl,
      temporalTimeoutMs: timeouts.temporalMs,
      stateQueryTimeoutMs: timeouts.stateQueryMs,
    }),
  );

  if (deps.db) {
    app.use(
      reconciliationRoutes({
        client: deps.client,
        db: deps.db,
        taskQueue: deps.taskQueue ?? CHECKOUT_TASK_QUEUE,
        temporalTimeoutMs: timeouts.temporalMs,
      }),
    );
  }

  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  const log = createLogger('api');
  app.use(errorMiddleware((message, err) => log.error(message, { err })));
  return app;
}
