// Field rules shared by the services' request schemas.
import { z } from 'zod';
import { isIso4217 } from '../../shared/currencies.ts';
import { MAX_LINE_QUANTITY } from '../../shared/limits.ts';

export const id = z.string().trim().min(1).max(200);
export const currency = z.string().refine(isIso4217, 'must be an active ISO 4217 currency code, like EUR');
/** Integer minor units; 0 allowed (free items, zero discount). */
export const minorAmount = z.number().int().min(0).max(1_000_000_000);
export const positiveAmount = z.number().int().min(1).max(1_000_000_000);
export const quantity = z.number().int().min(1).max(MAX_LINE_QUANTITY);

/** Lists of `{ sku }` lines may name each SKU once. */
export function uniqueSkus<T extends { sku: string }>(lines: T[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  lines.forEach((line, i) => {
    if (seen.has(line.sku)) ctx.addIssue({ code: 'custom', message: `duplicate sku ${line.sku}`, path: [i, 'sku'] });
    seen.add(line.sku);
  });
}
