// Run-time chaos knobs (README "psp", PUT/GET/DELETE /v1/chaos): how a real
// provider misbehaves — slow decisions, late, duplicated, reordered or lost
// webhooks, a payment that cannot be stopped, refunds it refuses. Kept in memory per PSP instance,
// like the fault injection every service has, and like it served only when fault injection is on.
import { z } from 'zod';
import { DEFAULT_WEBHOOK_SECRET } from './signature.ts';

const ms = z.number().int().min(0).max(3_600_000);
const rate = z.number().min(0).max(1);

export const chaosSchema = z.strictObject({
  /** Delay before a pending authorization or capture is decided. */
  processingDelayMs: ms.optional(),
  /** Delay before an event's first delivery attempt. */
  deliveryDelayMs: ms.optional(),
  /** Fraction of events delivered twice (same event id). */
  duplicateRate: rate.optional(),
  /** Due deliveries are sent newest first. */
  reorder: z.boolean().optional(),
  /** Fraction of events never delivered (marked DROPPED). */
  dropRate: rate.optional(),
  /** Pending authorizations refuse void (409 payment_processing) and are approved after lateDecisionMs. */
  paidAfterTimeout: z.boolean().optional(),
  /** How late a "late" decision comes (paidAfterTimeout, card 4000000000000259). */
  lateDecisionMs: ms.optional(),
  /** Every refund fails when decided (failureReason 'refund_rejected'). */
  rejectRefunds: z.boolean().optional(),
  /** The webhook signing secret (write-only: no answer ever shows it). */
  secret: z.string().min(1).max(200).optional(),
});

export type ChaosSettings = Required<z.infer<typeof chaosSchema>>;

/** What GET/PUT/DELETE /v1/chaos answer: every knob except the signing secret. */
export type PublicChaosSettings = Omit<ChaosSettings, 'secret'>;

export const DEFAULT_CHAOS: ChaosSettings = {
  processingDelayMs: 200,
  deliveryDelayMs: 0,
  duplicateRate: 0,
  reorder: false,
  dropRate: 0,
  paidAfterTimeout: false,
  lateDecisionMs: 60_000,
  rejectRefunds: false,
  secret: DEFAULT_WEBHOOK_SECRET,
};

export class Chaos {
  private settings: ChaosSettings;

  /** `defaults` is what DELETE /v1/chaos returns to. */
  constructor(private readonly defaults: ChaosSettings) {
    this.settings = defaults;
  }

  get current(): ChaosSettings {
    return this.settings;
  }

  /** The settings as an answer may show them: a secret is never echoed, not even to the one who set it. */
  get shown(): PublicChaosSettings {
    const { secret: _secret, ...knobs } = this.settings;
    return knobs;
  }

  /** Knobs not given go back to their defaults, so a PUT says the whole story. */
  set(knobs: z.infer<typeof chaosSchema>): void {
    this.settings = { ...this.defaults, ...knobs };
  }

  clear(): void {
    this.settings = this.defaults;
  }
}
