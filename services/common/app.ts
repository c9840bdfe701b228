// The Express app every downstream service is built from: JSON in and out,
// /healthz, run-time fault injection, Idempotency-Key on every POST, and the
// shared error rendering. A service only supplies its routes.
import express, { type Express } from 'express';
import type { ServiceUrls } from '../../lib/config.ts';
import type { Db } from '../../lib/db.ts';
import { errorMiddleware, notFound, sendError, unavailable } from '../../lib/http-errors.ts';
import { observeHttp } from '../../lib/http-observability.ts';
import { createLogger } from '../../lib/logger.ts';
import { metricsHandler } from '../../lib/metrics.ts';
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
  /** How long an in-progress idempotency record blocks retries before it is taken over (default 60 s). */
  idempotencyStaleAfterMs?: number;
}

export function createServiceApp(
  service: ServiceName,
  db: Db,
  defineRoutes: (router: ServiceRouter) => void,
  options: ServiceAppOptions = {},
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(observeHttp(service));
  app.get('/metrics', metricsHandler());
  app.use(express.json({ limit: '256kb' }));

  app.get('/healthz', async (_req, res) => {
    try {
      await db.$queryRaw`SELECT 1`;
      res.json({ ok: true, service });
    } catch {
      sendError(res, unavailable('database_unavailable', `${service} cannot reach its database`));
    }
  });

  const faults = new Faults();
  app.use(faultRoutes(faults));
  app.use(injectFaults(faults));

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
