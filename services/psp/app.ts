import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { DEFAULT_TIMEOUT_CARD_MS } from './payments.ts';
import { pspRoutes } from './routes.ts';

export interface PspAppOptions extends ServiceAppOptions {
  /** How long the timeout test card holds a request before answering 504 (default 30 s). */
  timeoutCardMs?: number;
}

export function createPspApp(db: Db, options: PspAppOptions = {}) {
  const timeoutCardMs = options.timeoutCardMs ?? DEFAULT_TIMEOUT_CARD_MS;
  return createServiceApp('psp', db, pspRoutes(db, { timeoutCardMs }), options);
}
