// Demo and test data: a small EUR catalogue, two customers with loyalty
// accounts, and two coupons. Seeding only inserts what is missing and never
// overwrites, so rerunning it on a live database keeps the stock that orders
// consumed and the coupons that were used.
import { fileURLToPath } from 'node:url';
import type { Db } from '../lib/db.ts';

export const SEED = {
  currency: 'EUR',
  catalogue: [
    { sku: 'TSHIRT-RED-M', name: 'T-shirt, red, M', priceMinor: 1999, onHand: 100 },
    { sku: 'MUG-LOGO', name: 'Mug with logo', priceMinor: 1299, onHand: 50 },
    { sku: 'HOODIE-GREY-L', name: 'Hoodie, grey, L', priceMinor: 4999, onHand: 20 },
    { sku: 'STICKER-PACK', name: 'Sticker pack', priceMinor: 399, onHand: 5 },
  ],
  customers: ['cust-alice', 'cust-bob'],
  coupons: [
    { code: 'WELCOME10', customerId: null, kind: 'PERCENT', value: 10, minSpendMinor: 2000 },
    { code: 'ALICE-5EUR', customerId: 'cust-alice', kind: 'FIXED', value: 500, minSpendMinor: 0 },
  ],
} as const;

/** Inserts the seed rows that are missing; returns how many of each it inserted. */
export async function seed(db: Db): Promise<{ stock: number; coupons: number; loyaltyAccounts: number }> {
  const currency = SEED.currency;
  const stock = await db.stockItem.createMany({
    data: SEED.catalogue.map((item) => ({ ...item, currency, reserved: 0 })),
    skipDuplicates: true,
  });
  const coupons = await db.coupon.createMany({
    data: SEED.coupons.map((coupon) => ({ ...coupon, currency })),
    skipDuplicates: true,
  });
  const loyaltyAccounts = await db.loyaltyAccount.createMany({
    data: SEED.customers.map((customerId) => ({ customerId, points: 0 })),
    skipDuplicates: true,
  });
  return { stock: stock.count, coupons: coupons.count, loyaltyAccounts: loyaltyAccounts.count };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { loadConfig } = await import('../lib/config.ts');
  const { createDb } = await import('../lib/db.ts');
  const db = createDb(loadConfig().databaseUrl);
  try {
    const inserted = await seed(db);
    console.error(`seeded: ${inserted.stock} stock items, ${inserted.coupons} coupons, ${inserted.loyaltyAccounts} loyalty accounts`);
  } finally {
    await db.$disconnect();
  }
}
