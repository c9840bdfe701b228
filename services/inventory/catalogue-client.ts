// How another process reads the catalogue (the inventory service's GET /catalogue): the orders
// service prices orders with it, the API checks a checkout at the door with it. Sent with the
// service key and a short deadline; an inventory service that does not answer usably is a
// retryable 503 `inventory_unavailable`, so neither caller ever guesses a price.
import { HttpError, unavailable } from '../../lib/http-errors.ts';
import { tracedCall } from '../../lib/http-observability.ts';
import { bearer } from '../common/auth.ts';

export const DEFAULT_CATALOGUE_TIMEOUT_MS = 2_000;

/** One SKU as the catalogue sells it. */
export interface CatalogueItem {
  sku: string;
  name: string;
  priceMinor: number;
  currency: string;
}

/** The catalogue's answer for a list of SKUs: the ones it sells, and the ones it does not know. */
export interface CatalogueAnswer {
  items: CatalogueItem[];
  unknown: string[];
}

export interface CatalogueClient {
  lookup(skus: readonly string[]): Promise<CatalogueAnswer>;
}

export function createCatalogueClient(inventoryUrl: string, options: { serviceKey: string; timeoutMs?: number }): CatalogueClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CATALOGUE_TIMEOUT_MS;
  const auth = bearer(options.serviceKey);
  return {
    async lookup(skus) {
      if (skus.length === 0) return { items: [], unknown: [] };
      const url = new URL('/catalogue', inventoryUrl);
      for (const sku of skus) url.searchParams.append('sku', sku);
      const attributes = { 'http.request.method': 'GET', 'url.full': url.href, 'commerce.service': 'inventory' };
      let status: number;
      let text: string;
      try {
        ({ status, text } = await tracedCall('GET inventory', attributes, async (traceHeaders) => {
          const response = await fetch(url, {
            headers: { ...traceHeaders, ...auth, accept: 'application/json' },
            signal: AbortSignal.timeout(timeoutMs),
          });
          return { status: response.status, text: await response.text() };
        }));
      } catch (err) {
        const why = (err as Error).name === 'TimeoutError' ? `did not answer within ${timeoutMs} ms` : 'is unreachable';
        throw inventoryUnavailable(`the inventory service ${why}`);
      }
      // Anything but an answer we can read (a 401 from a wrong key, a 5xx) is the dependency failing, not the caller.
      const answer = status === 200 ? parseAnswer(text) : null;
      if (answer === null) throw inventoryUnavailable(`the inventory service answered ${status} to a catalogue look-up`);
      return answer;
    },
  };
}

function inventoryUnavailable(message: string): HttpError {
  return unavailable('inventory_unavailable', `${message}; retry later`, { dependency: 'inventory' });
}

function parseAnswer(text: string): CatalogueAnswer | null {
  try {
    const body = JSON.parse(text) as Partial<CatalogueAnswer>;
    if (!Array.isArray(body.items) || !Array.isArray(body.unknown)) return null;
    const wellFormed = body.items.every(
      (item) => typeof item?.sku === 'string' && Number.isSafeInteger(item.priceMinor) && typeof item.currency === 'string',
    );
    return wellFormed ? { items: body.items, unknown: body.unknown.map(String) } : null;
  } catch {
    return null;
  }
}
