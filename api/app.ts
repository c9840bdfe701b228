// The public HTTP API: checkouts, refunds, coupons, reconciliation and the operations page,
// each a route module declared through api/route.ts (token, permission, body limit, schema)
// into one Router and one RouteTable. In front of them: security headers, a per-IP rate limit,
// and the shared error shape for every failure.
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import type { Client } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { DEV_FINGERPRINT_SECRET } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import { errorMiddleware, HttpError, notFound, sendError, unavailable } from '../lib/http-errors.ts';
import { observeHttp } from '../lib/http-observability.ts';
import { createLogger } from '../lib/logger.ts';
import { metricsHandler } from '../lib/metrics.ts';
import type { RefundPolicy } from '../shared/refunds.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { createAuditLog, type AuditStore } from './audit.ts';
import type { CatalogueClient } from './catalogue.ts';
import type { TokenVerifier } from './auth.ts';
import type { PaymentMethodClient } from './payment-methods.ts';
import { declareRoutes, RouteTable } from './route.ts';
import { asTemporalUnavailable } from './temporal.ts';
import { auditRoutes } from './routes/audit.ts';
import { codecCors, codecRoutes } from './routes/codec.ts';
import { contractRoutes } from './routes/contract.ts';
import { checkoutRoutes } from './routes/checkouts.ts';
import { couponRoutes } from './routes/coupons.ts';
import { healthRoutes } from './routes/health.ts';
import { meRoutes } from './routes/me.ts';
import { operationsRoutes } from './routes/operations.ts';
import type { OpsSignInClient } from './ops-page/sign-in.ts';
import { reconciliationRoutes } from './routes/reconciliation.ts';
import { refundRoutes } from './routes/refunds.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { DEFAULT_TOLERANCE_SECONDS } from './webhook-signature.ts';

export interface ApiTimeouts {
  /** Deadline for all Temporal calls made for one request. */
  temporalMs: number;
  /** Deadline for the `state` query, which only a running worker can answer. */
  stateQueryMs: number;
  /** Deadline for each /healthz probe. */
  healthMs: number;
}

export const DEFAULT_API_TIMEOUTS: ApiTimeouts = { temporalMs: 5_000, stateQueryMs: 2_000, healthMs: 2_000 };

/** Requests per minute one client address may make (API_RATE_LIMIT_PER_MINUTE). */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600;
const RATE_LIMIT_WINDOW_MS = 60_000;

export interface ApiDeps {
  client: Client;
  taskQueue?: string;
  /** Resolves when the database answers; rejects (with the reason) when it does not. */
  checkDatabase: () => Promise<void>;
  /** Base URL of the Temporal Web UI, for the `webUiUrl` links; omit for none. */
  temporalUiUrl?: string;
  namespace: string;
  timeouts?: Partial<ApiTimeouts>;
  /** Verifies bearer tokens (api/auth.ts createTokenVerifier). */
  verifier: TokenVerifier;
  /** The identity provider's issuer URL: the operations page signs in there (its CSP allows it). */
  issuerUrl: string;
  /** The public client the operations page signs in as, and the audience it asks for (AUTH_CLIENT_ID, AUTH_AUDIENCE). */
  opsSignIn?: OpsSignInClient;
  /**
   * Our own database (audit log, webhook events, reconciliation report, distribution
   * recipients); without it /webhooks/psp and /reconciliation are absent, and operator actions
   * are refused with 503, since none may go unrecorded.
   */
  db?: Db;
  /** Where operator actions are recorded; default the `api_audit_log` table of `db`. */
  audit?: AuditStore;
  /** Secrets that sign the provider's webhooks (several while rotating); with `db`, POST /webhooks/psp is served. */
  webhookSecrets?: string[];
  /** How far a webhook's signed timestamp may be from now (default 300 s). */
  webhookToleranceSeconds?: number;
  /** Overrides of the Refund workflow's default policy for refunds started by POST /refunds. */
  refundPolicy?: Partial<RefundPolicy>;
  /** Requests per minute per client address, on every route (default DEFAULT_RATE_LIMIT_PER_MINUTE). */
  rateLimitPerMinute?: number;
  /** The inventory service's catalogue (createCatalogueClient): POST /checkouts prices and checks every line with it. */
  catalogue: CatalogueClient;
  /** The payment provider's vault (createPaymentMethodClient): POST /checkouts exchanges a card number for its token. */
  paymentMethods: PaymentMethodClient;
  /** Keys the request fingerprints in checkout and refund memos (REQUEST_FINGERPRINT_SECRET); default the development one. */
  fingerprintSecret?: string;
  /**
   * The payload codec (lib/payload-codec.ts) behind POST /codec/decode and /codec/encode, the Web
   * UI's and the CLI's codec server; without it those routes are absent.
   */
  payloadCodec?: PayloadCodec;
  /** Web UI origins whose pages may call /codec/* (CODEC_CORS_ORIGINS); none by default. */
  codecCorsOrigins?: string[];
}

/** The app, with the table of every declared route in `app.locals.routeTable` (the source of /openapi.json). */
export function createApiApp(deps: ApiDeps): express.Express {
  const timeouts = { ...DEFAULT_API_TIMEOUTS, ...deps.timeouts };
  const taskQueue = deps.taskQueue ?? CHECKOUT_TASK_QUEUE;
  const audit = deps.audit ?? (deps.db ? createAuditLog(deps.db) : unavailableAuditLog());
  const fingerprintSecret = deps.fingerprintSecret ?? DEV_FINGERPRINT_SECRET;
  const app = express();
  app.disable('x-powered-by');
  // First: every request gets its span, log context and duration, whichever route answers it (a 429 too).
  app.use(observeHttp('api'));
  // An API answers JSON: nothing it serves may load or frame anything. The operations page
  // sets its own, wider policy on its three files (api/routes/operations.ts).
  app.use(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    }),
  );
  app.use(rateLimitPerClient(deps.rateLimitPerMinute ?? DEFAULT_RATE_LIMIT_PER_MINUTE));
  app.get('/metrics', metricsHandler());
  // Before the routes, so preflights are answered without a token and refusals carry CORS headers too.
  if (deps.payloadCodec) app.use('/codec', codecCors(deps.codecCorsOrigins ?? []));

  const router = express.Router();
  const table = new RouteTable();
  const route = declareRoutes(router, table, deps.verifier);
  const common = { client: deps.client, temporalTimeoutMs: timeouts.temporalMs };

  healthRoutes(route, { client: deps.client, namespace: deps.namespace, checkDatabase: deps.checkDatabase, timeoutMs: timeouts.healthMs });
  if (deps.db && deps.webhookSecrets?.length) {
    webhookRoutes(route, {
      ...common,
      db: deps.db,
      secrets: deps.webhookSecrets,
      toleranceSeconds: deps.webhookToleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
    });
  }
  meRoutes(route);
  checkoutRoutes(route, {
    ...common,
    namespace: deps.namespace,
    taskQueue,
    temporalUiUrl: deps.temporalUiUrl,
    stateQueryTimeoutMs: timeouts.stateQueryMs,
    audit,
    catalogue: deps.catalogue,
    paymentMethods: deps.paymentMethods,
    fingerprintSecret,
  });
  refundRoutes(route, {
    ...common,
    namespace: deps.namespace,
    taskQueue,
    temporalUiUrl: deps.temporalUiUrl,
    stateQueryTimeoutMs: timeouts.stateQueryMs,
    policy: deps.refundPolicy,
    audit,
    fingerprintSecret,
  });
  couponRoutes(route, { ...common, db: deps.db, taskQueue, stateQueryTimeoutMs: timeouts.stateQueryMs, audit });
  operationsRoutes(route, {
    ...common,
    namespace: deps.namespace,
    temporalUiUrl: deps.temporalUiUrl,
    stateQueryTimeoutMs: timeouts.stateQueryMs,
    audit,
    issuerUrl: deps.issuerUrl,
    opsSignIn: deps.opsSignIn,
  });
  if (deps.db) reconciliationRoutes(route, { ...common, db: deps.db, taskQueue, audit });
  auditRoutes(route, { audit });
  if (deps.payloadCodec) codecRoutes(route, { codec: deps.payloadCodec });
  // last: the contract documents every route declared above (read from the table at request time)
  contractRoutes(route, { table, issuer: deps.issuerUrl });

  app.use(router);
  app.locals.routeTable = table;
  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  const log = createLogger('api');
  // A Temporal call that no route wrapped in callTemporal (a long poll for a result, a query)
  // still fails as 503 temporal_unavailable when Temporal is down or restarting, never as a 500.
  app.use(((err, _req, _res, next) => next(asTemporalUnavailable(err) ?? err)) as ErrorRequestHandler);
  app.use(errorMiddleware((message, err) => log.error(message, { err })));
  return app;
}

/** The table of every route `app` declared (set by createApiApp). */
export function routeTableOf(app: express.Express): RouteTable {
  return app.locals.routeTable as RouteTable;
}

/**
 * At most `perMinute` requests per client address in a fixed one-minute window, on every route
 * (before authentication, so guessing tokens is throttled too); the refusal is the shared error
 * shape with the seconds until the window resets in Retry-After.
 */
function rateLimitPerClient(perMinute: number) {
  return rateLimit({
    windowMs: RATE_LIMIT_WINDOW_MS,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (req: Request, res: Response) => {
      const resetTime = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = resetTime ? Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : RATE_LIMIT_WINDOW_MS / 1000;
      res.setHeader('Retry-After', String(seconds));
      sendError(res, new HttpError(429, 'rate_limited', `too many requests; retry in ${seconds} s`));
    },
  });
}

/** Without a database no operator action can be recorded, so none is sent: fail closed. */
function unavailableAuditLog(): AuditStore {
  const refuse = async (): Promise<never> => {
    throw unavailable('audit_unavailable', 'the audit log is unavailable; operator actions are refused until it is back');
  };
  return { attempted: refuse, settled: refuse, list: refuse };
}
