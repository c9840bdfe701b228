// Read side of the catalogue: stock levels per SKU, and the prices other services and the API
// sell at (GET /catalogue).
import type { Db } from '../../lib/db.ts';
import { notFound } from '../../lib/http-errors.ts';
import type { StockItem } from '../../generated/prisma/client.ts';
import type { CatalogueAnswer } from './catalogue-client.ts';

export interface StockView {
  sku: string;
  name: string;
  priceMinor: number;
  currency: string;
  onHand: number;
  reserved: number;
  available: number;
}

export function toStockView(item: StockItem): StockView {
  const { sku, name, priceMinor, currency, onHand, reserved } = item;
  return { sku, name, priceMinor, currency, onHand, reserved, available: onHand - reserved };
}

export async function listStock(db: Db): Promise<StockView[]> {
  const items = await db.stockItem.findMany({ orderBy: { sku: 'asc' } });
  return items.map(toStockView);
}

export async function getStock(db: Db, sku: string): Promise<StockView> {
  const item = await db.stockItem.findUnique({ where: { sku } });
  if (!item) throw notFound(`unknown sku ${sku}`);
  return toStockView(item);
}

/** What the catalogue sells each of `skus` at; SKUs it does not hold are listed as unknown. */
export async function readCatalogue(db: Db, skus: readonly string[]): Promise<CatalogueAnswer> {
  const wanted = [...new Set(skus)];
  const rows = await db.stockItem.findMany({
    where: { sku: { in: wanted } },
    select: { sku: true, name: true, priceMinor: true, currency: true },
    orderBy: { sku: 'asc' },
  });
  const known = new Set(rows.map((row) => row.sku));
  return { items: rows, unknown: wanted.filter((sku) => !known.has(sku)) };
}
