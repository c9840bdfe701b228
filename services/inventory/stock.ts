// Read side of the catalogue: stock levels per SKU.
import type { Db } from '../../lib/db.ts';
import { notFound } from '../../lib/http-errors.ts';
import type { StockItem } from '../../generated/prisma/client.ts';

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
