// GET /healthz: can this API do its job right now? It needs Temporal (to start and
// read checkouts) and the database; both are probed in parallel under a deadline.
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { RouteDeclarer } from '../route.ts';
import { createLogger } from '../../lib/logger.ts';
import { errorMessage, isTimeout } from '../temporal.ts';

const log = createLogger('api');

export interface HealthRoutesDeps {
  client: Client;
  namespace: string;
  checkDatabase: () => Promise<void>;
  timeoutMs: number;
}

type Probe = { up: true } | { up: false; reason: string };

const upDown = z.enum(['up', 'down']);
const healthy = z.object({ ok: z.literal(true), temporal: upDown, database: upDown });

export function healthRoutes(route: RouteDeclarer, deps: HealthRoutesDeps): void {
  route(
    {
      method: 'get',
      path: '/healthz',
      summary: 'Can this API do its job now: Temporal and the database answer (503 naming which does not)',
      tag: 'health',
      permissions: 'public',
      query: z.object({}),
      responses: { 200: { description: 'Both answer', schema: healthy } },
    },
    async ({ res }) => {
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
      // The why (addresses, driver messages) goes to the log: this answer is public.
      log.warn('health check failed', {
        temporal: temporal.up ? 'up' : temporal.reason,
        database: database.up ? 'up' : database.reason,
      });
      const reasons = [temporal.up ? null : 'Temporal is unavailable', database.up ? null : 'the database is unavailable'].filter(
        (r): r is string => r !== null,
      );
      res.status(503).json({
        ...body,
        error: {
          code: temporal.up ? 'database_unavailable' : 'temporal_unavailable',
          message: `${reasons.join('; ')}; retry later`,
        },
      });
    },
  );
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
