// The limits a checkout must stay within, in one place: the API refuses at the door what the
// services would refuse later, so both read these numbers. Kept free of Node imports (workflows
// may import it).

/** Lines in one checkout (each SKU once). */
export const MAX_CHECKOUT_LINES = 50;

/** Units of one SKU in one checkout, and in one refund's restock line. */
export const MAX_LINE_QUANTITY = 1_000;

/**
 * An order's subtotal in minor units (100,000.00 in a two-decimal currency). Well inside the
 * orders table's int4 columns, so no sum of lines can overflow them.
 */
export const MAX_ORDER_TOTAL_MINOR = 10_000_000;

/** Why `subtotalMinor` is refused, or null when it is within the limit. */
export function orderTotalProblem(subtotalMinor: number): string | null {
  if (Number.isSafeInteger(subtotalMinor) && subtotalMinor <= MAX_ORDER_TOTAL_MINOR) return null;
  return `order total is above the limit of ${MAX_ORDER_TOTAL_MINOR} minor units`;
}
