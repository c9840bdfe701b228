// Run-time fault injection (README "Fault injection"): lets tests and demos make
// a service slow, failing, or "done but timed out" without touching its code.
import express, { type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod';
import { parseBody, unavailable } from '../../lib/http-errors.ts';
import { sleep } from './timers.ts';

const faultSchema = z.strictObject({
  latencyMs: z.number().int().min(0).max(600_000).optional(),
  errorRate: z.number().min(0).max(1).optional(),
  hangAfterMs: z.number().int().min(0).max(600_000).optional(),
  hangRate: z.number().min(0).max(1).optional(),
  path: z.string().startsWith('/').optional(),
});
export type FaultConfig = z.infer<typeof faultSchema>;

// Never faulted, so a broken service can still be inspected and healed.
const CONTROL_PATHS = ['/_faults', '/healthz'];

export class Faults {
  private config: FaultConfig = {};

  get current(): FaultConfig {
    return this.config;
  }

  set(config: FaultConfig): void {
    // hangAfterMs alone means "every request hangs"
    this.config = config.hangAfterMs !== undefined && config.hangRate === undefined ? { ...config, hangRate: 1 } : config;
  }

  clear(): void {
    this.config = {};
  }

  appliesTo(path: string): boolean {
    if (CONTROL_PATHS.some((p) => path === p || path.startsWith(`${p}/`))) return false;
    return this.config.path === undefined || path.startsWith(this.config.path);
  }
}

export function faultRoutes(faults: Faults): Router {
  const router = express.Router();
  router.get('/_faults', (_req, res) => {
    res.json(faults.current);
  });
  router.put('/_faults', (req, res) => {
    faults.set(parseBody(faultSchema, req.body));
    res.json(faults.current);
  });
  router.delete('/_faults', (_req, res) => {
    faults.clear();
    res.json(faults.current);
  });
  return router;
}

const HOLD = 'holdResponseMs';

/** Applies latency and injected errors up front, and marks requests whose response should hang. */
export function injectFaults(faults: Faults): RequestHandler {
  return async (req, res, next) => {
    if (!faults.appliesTo(req.path)) return next();
    const { latencyMs, errorRate, hangAfterMs, hangRate } = faults.current;
    if (latencyMs) await sleep(latencyMs);
    if (errorRate && Math.random() < errorRate) {
      throw unavailable('injected_fault', 'fault injected before doing any work');
    }
    if (hangAfterMs !== undefined && hangRate && Math.random() < hangRate) res.locals[HOLD] = hangAfterMs;
    next();
  };
}

/** Called after the work is committed and before the response is written. */
export async function holdIfHanging(res: Response): Promise<void> {
  const ms = res.locals[HOLD];
  if (typeof ms === 'number' && ms > 0) await sleep(ms);
}
