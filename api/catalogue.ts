// The checkout's door check against the catalogue: before a run starts, every line must name a
// SKU the inventory service sells, in the request's currency, within the order total limit, and
// any price the caller sent must be the catalogue's. The lines come back priced from the
// catalogue, so the workflow's quote, summary and AmountMinor show what the order will cost.
import { conflict, invalidRequest } from '../lib/http-errors.ts';
import { orderTotalProblem, MAX_ORDER_TOTAL_MINOR } from '../shared/limits.ts';
import { formatMoney } from '../shared/money.ts';
import type { CatalogueClient } from '../services/inventory/catalogue-client.ts';
import type { CheckoutRequest } from './checkout-request.ts';

export {
  createCatalogueClient,
  type CatalogueAnswer,
  type CatalogueClient,
  type CatalogueItem,
} from '../services/inventory/catalogue-client.ts';

/** A checkout line at the catalogue's price. */
export interface PricedLine {
  sku: string;
  quantity: number;
  unitPriceMinor: number;
}

/**
 * The request's lines at the catalogue's prices, or the refusal: 400 `invalid_request` naming the
 * field (unknown SKU, currency, total over the limit), 409 `price_changed` when a sent
 * `unitPriceMinor` is not the catalogue's, 503 `inventory_unavailable` when the catalogue cannot be read.
 */
export async function priceFromCatalogue(request: CheckoutRequest, catalogue: CatalogueClient): Promise<PricedLine[]> {
  const answer = await catalogue.lookup(request.lines.map((line) => line.sku));
  const bySku = new Map(answer.items.map((item) => [item.sku, item]));

  const unknown = request.lines.flatMap((line, i) => (bySku.has(line.sku) ? [] : [{ field: `lines.${i}.sku`, sku: line.sku }]));
  if (unknown.length > 0) {
    const [first] = unknown as [(typeof unknown)[number]];
    throw invalidRequest(`${first.field}: the catalogue has no SKU "${first.sku}"`, first.field, {
      fields: unknown.map((u) => u.field),
    });
  }

  const priced = request.lines.map((line) => {
    const item = bySku.get(line.sku)!;
    if (item.currency !== request.currency) {
      throw invalidRequest(`currency: the catalogue sells ${line.sku} in ${item.currency}, not ${request.currency}`, 'currency', {
        sku: line.sku,
        catalogueCurrency: item.currency,
      });
    }
    return { sku: line.sku, quantity: line.quantity, unitPriceMinor: item.priceMinor };
  });

  const subtotalMinor = priced.reduce((sum, line) => sum + line.quantity * line.unitPriceMinor, 0);
  const tooLarge = orderTotalProblem(subtotalMinor);
  if (tooLarge !== null) {
    throw invalidRequest(`lines: ${tooLarge}`, 'lines', { subtotalMinor, maxTotalMinor: MAX_ORDER_TOTAL_MINOR });
  }

  const changed = request.lines.flatMap((line, i) =>
    line.unitPriceMinor === undefined || line.unitPriceMinor === priced[i]!.unitPriceMinor
      ? []
      : [{ sku: line.sku, quotedUnitPriceMinor: line.unitPriceMinor, catalogueUnitPriceMinor: priced[i]!.unitPriceMinor }],
  );
  if (changed.length > 0) {
    const [first] = changed as [(typeof changed)[number]];
    const price = (amountMinor: number) => formatMoney({ amountMinor, currency: request.currency });
    throw conflict(
      'price_changed',
      `the price of ${first.sku} is ${price(first.catalogueUnitPriceMinor)}, not ${price(first.quotedUnitPriceMinor)}; nothing was reserved`,
      { ...first, changes: changed },
    );
  }
  return priced;
}
