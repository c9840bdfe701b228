// The knobs the chaos turns: every service's /_faults (errors before any work, answers held
// after the work is committed) and the payment provider's /v1/chaos (webhook duplicates,
// reordering, drops, late "paid after timeout" decisions, refunds it refuses). The provider's
// PUT replaces all its knobs at once, so the current combination is kept here and sent whole.
import type { ServiceUrls } from '../../lib/config.ts';
import { sleep } from './api.ts';

const SERVICES = ['orders', 'inventory', 'coupons', 'loyalty', 'payments', 'psp'] as const;

/** The rates: one call in ten fails before any work, one in twenty hangs after committing it. */
export const SERVICE_FAULTS = {
  errorRate: 0.1,
  hangRate: 0.05,
  // longer than every caller's deadline (8 s activities, 10 s payments → PSP, 15 s PSP-bound activities)
  hangAfterMs: 16_000,
};

/** The provider's knobs outside any fault: quick decisions, and a late approval that comes within the run. */
export const CALM_PSP = { processingDelayMs: 200, lateDecisionMs: 6_000 };
export const WEBHOOK_CHAOS = { duplicateRate: 0.3, reorder: true, dropRate: 0.1, deliveryDelayMs: 300 };

export interface PspChaos {
  processingDelayMs?: number;
  lateDecisionMs?: number;
  duplicateRate?: number;
  reorder?: boolean;
  dropRate?: number;
  deliveryDelayMs?: number;
  paidAfterTimeout?: boolean;
  rejectRefunds?: boolean;
}

export class FaultControl {
  private psp: PspChaos = { ...CALM_PSP };
  /** From the first service fault until calm(): the worker kills repeat while this holds. */
  active = false;

  constructor(
    private readonly urls: ServiceUrls,
    private readonly auth: (service: keyof ServiceUrls) => Record<string, string>,
  ) {}

  /** Whether the provider refuses refunds right now (operators wait for it to stop before retrying). */
  get rejectingRefunds(): boolean {
    return this.psp.rejectRefunds === true;
  }

  async serviceFaults(on: boolean): Promise<void> {
    this.active = on;
    await Promise.all(
      SERVICES.map((service) =>
        // the provider's own control routes stay usable: faults hit its payment routes only
        control(`${this.urls[service]}/_faults`, on ? 'PUT' : 'DELETE', this.auth(service), on ? { ...SERVICE_FAULTS, ...(service === 'psp' ? { path: '/v1/payments' } : {}) } : undefined),
      ),
    );
  }

  /** Changes some of the provider's knobs, keeping the others as they are. */
  async pspChaos(change: PspChaos): Promise<void> {
    this.psp = { ...this.psp, ...change };
    await control(`${this.urls.psp}/v1/chaos`, 'PUT', this.auth('psp'), this.psp);
  }

  /** Back to a well-behaved provider (quick decisions, every webhook once) and services. */
  async calm(): Promise<void> {
    this.active = false;
    this.psp = { ...CALM_PSP };
    await Promise.all([this.serviceFaults(false), control(`${this.urls.psp}/v1/chaos`, 'PUT', this.auth('psp'), this.psp)]);
  }
}

/** A control call must land even while faults are on (a hang answers late, an error is tried again). */
async function control(url: string, method: 'PUT' | 'DELETE', headers: Record<string, string>, body?: unknown): Promise<void> {
  let last = '';
  for (let attempt = 1; attempt <= 8; attempt++) {
    try {
      const res = await fetch(url, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(500 * attempt);
  }
  throw new Error(`${method} ${url} failed: ${last}`);
}
