// The Express app every downstream service is built from: JSON in and out,
// /healthz, service credentials on every other route, run-time fault injection
// (only when enabled), Idempotency-Key on every POST, and the shared error
// rendering. A service only supplies its routes.
import express, { type Express } from 'express';
import type { ServiceUrls } from '../../lib/config.ts';
import type { Db } from '../../lib/db.ts';
import { errorMiddleware, notFound, sendError, unavailable } from '../../lib/http-errors.ts';
import { observeHttp } from '../../lib/http-observability.ts';
import { createLogger } from '../../lib/logger.ts';
import { metricsHandler } from '../../lib/metrics.ts';
import { requireBearerKey } from './auth.ts';
import { Faults, faultRoutes, injectFaults } from './faults.ts';
import { idempotent } from './idempotency.ts';
import { type Handler, sendJson } from './reply.ts';

export type ServiceName = keyof ServiceUrls;

export interface ServiceRouter {
  get(path: string, handler: Handler): void;
  /** POST routes are idempotent by Idempotency-Key; the handler runs at most once per key. */
  post(path: string, handler: Handler): void;
  /** A POST that is safe to repeat and must run afresh every time (a refresh): no Idempotency-Key, never replayed. */
  postRepeatable(path: string, handler: Handler): void;
  put(path: string, handler: Handler): void;
  delete(path: string, handler: Handler): void;
}

export interface ServiceAppOptions {
  /**
   * The bearer keys this service accepts (`SERVICE_API_KEYS`; the simulator's `PSP_API_KEYS`).
   * Required: without keys the app refuses to be built rather than serve anyone.
   */
  acceptedKeys?: readonly string[];
  /** `FAULT_INJECTION=on`: serve `/_faults` (default off: the route does not exist). */
  faultInjection?: boolean;
  /** How long an in-progress idempotency record blocks retries before it is taken over (default 60 s). */
  idempotencyStaleAfterMs?: number;
}

export function createServiceApp(
  service: ServiceName,
  db: Db,
  defineRoutes: (router: ServiceRouter) => void,
  options: ServiceAppOptions = {},
): Express {
  const authenticate = requireBearerKey(options.acceptedKeys ?? []);
  const app = express();
  app.disable('x-powered-by');
  app.use(observeHttp(service));
  // Open without a key: Prometheus scrapes it on the private network, and it holds no business data.
  app.get('/metrics', metricsHandler());

  app.get('/healthz', async (_req, res) => {
    try {
      await db.$queryRaw`SELECT 1`;
      res.json({ ok: true, service });
    } catch {
      sendError(res, unavailable('database_unavailable', `${service} cannot reach its database`));
    }
  });

  // Everything below needs a key; checked before the body is even parsed.
  app.use(authenticate);
  app.use(express.json({ limit: '256kb' }));

  if (options.faultInjection) {
    const faults = new Faults();
    app.use(faultRoutes(faults));
    app.use(injectFaults(faults));
  }

  const router = express.Router();
  const plain = (handler: Handler) => async (req: express.Request, res: express.Response) => {
    const reply = await handler(req);
    await sendJson(res, reply.status, JSON.stringify(reply.body));
  };
  defineRoutes({
    get: (path, handler) => router.get(path, plain(handler)),
    post: (path, handler) => router.post(path, idempotent({ db, scope: service, staleAfterMs: options.idempotencyStaleAfterMs }, handler)),
    postRepeatable: (path, handler) => router.post(path, plain(handler)),
    put: (path, handler) => router.put(path, plain(handler)),
    delete: (path, handler) => router.delete(path, plain(handler)),
  });
  app.use(router);

  app.use((req, _res, next) => next(notFound(`no route for ${req.method} ${req.path}`)));
  const log = createLogger(service);
  app.use(errorMiddleware((message, err) => log.error(message, { err })));
  return app;
}
