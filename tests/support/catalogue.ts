// The seeded catalogue (scripts/seed.ts) without an inventory service: for the API tests that run
// no services. Answers as GET /catalogue does; tests of the real look-up start the services.
import type { CatalogueClient, CatalogueItem } from '../../api/catalogue.ts';
import { SEED } from '../../scripts/seed.ts';

export function seededCatalogue(): CatalogueClient {
  const items = new Map<string, CatalogueItem>(SEED.catalogue.map(({ sku, name, priceMinor }) => [sku, { sku, name, priceMinor, currency: SEED.currency }]));
  return {
    async lookup(skus) {
      const wanted = [...new Set(skus)];
      return {
        items: wanted.flatMap((sku) => (items.has(sku) ? [items.get(sku)!] : [])),
        unknown: wanted.filter((sku) => !items.has(sku)),
      };
    },
  };
}
