import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { createPspClient } from './psp-client.ts';
import { paymentRoutes } from './routes.ts';

export interface PaymentsAppOptions extends ServiceAppOptions {
  /** Base URL of the payment provider (the psp service). */
  pspUrl: string;
  /** The simulator's secret API key (the first of `PSP_API_KEYS`), sent on every provider call. */
  pspApiKey: string;
  /** Deadline for one provider call (default 10 s); past it the answer is 503 psp_unavailable. */
  pspTimeoutMs?: number;
}

export function createPaymentsApp(db: Db, options: PaymentsAppOptions) {
  const psp = createPspClient(options.pspUrl, { apiKey: options.pspApiKey, timeoutMs: options.pspTimeoutMs });
  return createServiceApp('payments', db, paymentRoutes(db, psp), options);
}
