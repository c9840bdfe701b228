// What a client may send to POST /checkouts, and what the API derives from it:
// the workflow input and the summary shown in the Temporal UI. A request names SKUs
// and quantities; prices come from the catalogue (api/catalogue.ts), a sent price is
// only a quote; a card comes as a number or as the provider's token, and the workflow
// only ever gets the token (api/payment-methods.ts exchanges a number for one).
import { z } from 'zod';
import { HttpError } from '../lib/http-errors.ts';
import type { CheckoutInput, PaymentMethod } from '../shared/checkout.ts';
import { isIso4217 } from '../shared/currencies.ts';
import { MAX_CHECKOUT_LINES, MAX_LINE_QUANTITY, MAX_ORDER_TOTAL_MINOR } from '../shared/limits.ts';
import { formatMoney } from '../shared/money.ts';
import { PAYMENT_METHOD_TOKEN } from '../shared/payments.ts';
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

/**
 * A card number, exchanged for the provider's token before the checkout starts, or a token the
 * client already got from the provider. Either way only the token reaches the workflow.
 */
const paymentMethodSchema = z
  .discriminatedUnion('type', [
    z.object({
      type: z.literal('card'),
      number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits'),
    }),
    z.object({
      type: z.literal('token'),
      token: z.string().regex(PAYMENT_METHOD_TOKEN, 'must be a payment-method token (pm_…) from the payment provider'),
    }),
  ])
  .describe(
    'The card to charge: `{ "type": "card", "number": "…" }` is exchanged for the payment provider\'s token before the ' +
      'checkout starts and the number is never stored by us; `{ "type": "token", "token": "pm_…" }` pays with a token ' +
      'obtained from the provider (POST /v1/payment_methods).',
  );

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
    paymentMethod: paymentMethodSchema,
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
export type RequestedPaymentMethod = CheckoutRequest['paymentMethod'];

/** Why a header value cannot be used as an idempotency key, or null when it can. */
export function idempotencyKeyProblem(value: string | undefined): string | null {
  if (value === undefined || value === '') return 'the Idempotency-Key header is required';
  if (!IDEMPOTENCY_KEY.test(value)) return 'Idempotency-Key must be 1 to 100 characters from A-Z a-z 0-9 . _ : -';
  return null;
}

/**
 * The refusal of a key already used for another checkout request: the same answer whether the
 * started run's fingerprint or the provider's record of the key's card tells us.
 */
export function idempotencyKeyReused(key: string): HttpError {
  return new HttpError(422, 'idempotency_key_reused', `Idempotency-Key "${key}" was already used for a different checkout request`);
}

/**
 * The workflow input; `priced` are the request's lines at the catalogue's prices, passed as the
 * quote, and `paymentMethod` the provider's token for the request's card (never its number).
 */
export function toCheckoutInput(
  checkoutKey: string,
  request: CheckoutRequest,
  priced: readonly PricedLine[],
  paymentMethod: PaymentMethod,
): CheckoutInput {
  return {
    checkoutKey,
    customerId: request.customerId,
    region: request.region ?? DEFAULT_REGION,
    currency: request.currency,
    lines: priced.map(({ sku, quantity, unitPriceMinor }) => ({ sku, quantity, unitPriceMinor })),
    ...(request.couponCode === undefined ? {} : { couponCode: request.couponCode }),
    paymentMethod: { token: paymentMethod.token, brand: paymentMethod.brand, last4: paymentMethod.last4 },
  };
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
