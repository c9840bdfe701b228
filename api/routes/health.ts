// GET /healthz: can this API do its job right now? It needs Temporal (to start and
// read checkouts) and the database; both are probed in parallel under a deadline.
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import { errorMessage, isTimeout } from '../temporal.ts';

export interface HealthRoutesDeps {
  client: Client;
  namespace: string;
  checkDatabase: () => Promise<void>;
  timeoutMs: number;
}

type Probe = { up: true } | { up: false; reason: string };

export function healthRoutes(deps: HealthRoutesDeps): Router {
  const router = Router();

  router.get('/healthz', async (_req, res) => {
    const deadline = Date.now() + deps.timeoutMs;
    const [temporal, database] = await Promise.all([
      // bounded by the gRPC deadline itself, so no retry of the SDK outlives the probe
      probe(
        () =>
          deps.client.connection.withDeadline(deadline, () =>
            deps.client.workflowService.describeNamespace({ namespace: deps.namespace }),
          ),
        (err) => (isTimeout(err, deadline) ? `no answer within ${deps.timeoutMs} ms` : errorMessage(err)),
      ),
      probe(() => withTimeout(deps.timeoutMs, deps.checkDatabase()), errorMessage),
    ]);
    const body = { ok: temporal.up && database.up, temporal: upOrDown(temporal), database: upOrDown(database) };
    if (body.ok) {
      res.json(body);
      return;
    }
    const reasons = [
      temporal.up ? null : `Temporal is unavailable (${temporal.reason})`,
      database.up ? null : `the database is unavailable (${database.reason})`,
    ].filter((r): r is string => r !== null);
    res.status(503).json({
      ...body,
      error: {
        code: temporal.up ? 'database_unavailable' : 'temporal_unavailable',
        message: reasons.join('; '),
      },
    });
  });

  return router;
}

function upOrDown(probe: Probe): 'up' | 'down' {
  return probe.up ? 'up' : 'down';
}

async function probe(check: () => Promise<unknown>, explain: (err: unknown) => string): Promise<Probe> {
  try {
    await check();
    return { up: true };
  } catch (err) {
    return { up: false, reason: explain(err) };
  }
}

async function withTimeout<T>(timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
