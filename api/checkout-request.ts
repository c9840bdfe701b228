// What a client may send to POST /checkouts, and what the API derives from it:
// the workflow input, the fingerprint that guards the idempotency key, and the
// summary shown in the Temporal UI. A request names SKUs and quantities; prices
// come from the catalogue (api/catalogue.ts), a sent price is only a quote.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CheckoutInput } from '../shared/checkout.ts';
import { isIso4217 } from '../shared/currencies.ts';
import { MAX_CHECKOUT_LINES, MAX_LINE_QUANTITY, MAX_ORDER_TOTAL_MINOR } from '../shared/limits.ts';
import { formatMoney } from '../shared/money.ts';
import { DEFAULT_REGION } from '../shared/search-attributes.ts';
import type { PricedLine } from './catalogue.ts';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,100}$/;
/**
 * An opaque account id: operators see it and it is indexed (search attribute CustomerId), so no
 * `@` (emails) and no spaces (names). Every route that takes a customer id uses this one.
 */
export const customerIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be an opaque account id: 1 to 64 characters from A-Z a-z 0-9 . _ : - (no emails or names)');
const REGION = /^[a-z]{2,10}(-[a-z0-9]{1,10})?$/;

const lineSchema = z.object({
  sku: z.string().min(1).max(64),
  quantity: z.int().min(1).max(MAX_LINE_QUANTITY, `must be at most ${MAX_LINE_QUANTITY}`),
  /** The unit price the shop showed; refused with 409 price_changed if it is not the catalogue's. */
  unitPriceMinor: z.int().min(0).max(MAX_ORDER_TOTAL_MINOR).optional(),
});

export const checkoutRequestSchema = z
  .object({
    customerId: customerIdSchema,
    // Optional and without a schema default, so requests sent before it existed keep their fingerprint.
    region: z.string().regex(REGION, 'must be a lowercase region code like eu, us or us-east').optional(),
    currency: z.string().refine(isIso4217, 'must be an active ISO 4217 currency code, like EUR'),
    lines: z.array(lineSchema).min(1).max(MAX_CHECKOUT_LINES),
    couponCode: z.string().min(1).max(64).optional(),
    paymentMethod: z.object({
      type: z.literal('card'),
      number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits'),
    }),
  })
  .superRefine((body, ctx) => {
    const seen = new Set<string>();
    body.lines.forEach((line, index) => {
      if (seen.has(line.sku)) {
        ctx.addIssue({
          code: 'custom',
          message: `duplicate SKU "${line.sku}": put the whole quantity on one line`,
          path: ['lines', index, 'sku'],
        });
      }
      seen.add(line.sku);
    });
  });

export type CheckoutRequest = z.infer<typeof checkoutRequestSchema>;

/** Why a header value cannot be used as an idempotency key, or null when it can. */
export function idempotencyKeyProblem(value: string | undefined): string | null {
  if (value === undefined || value === '') return 'the Idempotency-Key header is required';
  if (!IDEMPOTENCY_KEY.test(value)) return 'Idempotency-Key must be 1 to 100 characters from A-Z a-z 0-9 . _ : -';
  return null;
}

/** The workflow input; `priced` are the request's lines at the catalogue's prices, passed as the quote. */
export function toCheckoutInput(checkoutKey: string, request: CheckoutRequest, priced: readonly PricedLine[]): CheckoutInput {
  return {
    checkoutKey,
    customerId: request.customerId,
    region: request.region ?? DEFAULT_REGION,
    currency: request.currency,
    lines: priced.map(({ sku, quantity, unitPriceMinor }) => ({ sku, quantity, unitPriceMinor })),
    ...(request.couponCode === undefined ? {} : { couponCode: request.couponCode }),
    paymentMethod: { type: 'card', number: request.paymentMethod.number },
  };
}

/**
 * sha256 of the validated body in canonical JSON (sorted keys, unknown fields
 * dropped), so re-sending the same request with other whitespace or key order
 * still counts as the same request.
 */
export function requestFingerprint(request: CheckoutRequest): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/** One line for the Temporal UI, at catalogue prices (before any coupon); no customer or card data. */
export function checkoutSummary(orderId: string, request: CheckoutRequest, priced: readonly PricedLine[]): string {
  const items = priced.reduce((sum, line) => sum + line.quantity, 0);
  const total = formatMoney({ amountMinor: subtotalMinor(priced), currency: request.currency });
  const coupon = request.couponCode === undefined ? '' : ' · with coupon';
  return `Checkout ${orderId} · ${items} ${items === 1 ? 'item' : 'items'} · ${total}${coupon}`;
}

/** The lines at catalogue prices as a markdown table for the Temporal UI's details panel. */
export function checkoutDetails(request: CheckoutRequest, priced: readonly PricedLine[]): string {
  const rows = priced.map(
    (line) =>
      `| ${line.sku} | ${line.quantity} | ${formatMoney({ amountMinor: line.unitPriceMinor, currency: request.currency })} |`,
  );
  return ['| SKU | Quantity | Unit price |', '| --- | ---: | ---: |', ...rows].join('\n');
}

function subtotalMinor(lines: readonly PricedLine[]): number {
  return lines.reduce((sum, line) => sum + line.quantity * line.unitPriceMinor, 0);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
