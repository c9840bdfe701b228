import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { MAX_CHECKOUT_LINES } from '../../shared/limits.ts';
import { id, quantity, uniqueSkus } from '../common/schemas.ts';
import { commitReservation, getReservation, releaseReservation, reserveStock } from './reservations.ts';
import { restock } from './restocks.ts';
import { getStock, listStock, readCatalogue } from './stock.ts';

const reserveSchema = z.object({
  orderId: id,
  lines: z
    .array(z.object({ sku: id, quantity }))
    .min(1)
    .max(MAX_CHECKOUT_LINES)
    .superRefine(uniqueSkus),
});
const restockSchema = z.object({
  restockId: id,
  orderId: id,
  lines: z
    .array(z.object({ sku: id, quantity }))
    .min(1)
    .max(MAX_CHECKOUT_LINES)
    .superRefine(uniqueSkus),
});
// `?sku=A&sku=B`: one SKU arrives as a string, several as an array.
const catalogueQuery = z.object({
  sku: z
    .union([id, z.array(id)])
    .transform((sku) => (Array.isArray(sku) ? sku : [sku]))
    .pipe(z.array(id).min(1).max(MAX_CHECKOUT_LINES)),
});
const orderParams = z.object({ orderId: id });
const skuParams = z.object({ sku: id });

export function inventoryRoutes(db: Db) {
  return (r: ServiceRouter) => {
    r.get('/stock', async () => ok(await listStock(db)));
    r.get('/stock/:sku', async (req) => ok(await getStock(db, parse(skuParams, req.params).sku)));
    r.get('/catalogue', async (req) => ok(await readCatalogue(db, parse(catalogueQuery, req.query).sku)));

    r.post('/reservations', async (req) => {
      const { created: isNew, reservation } = await reserveStock(db, parseBody(reserveSchema, req.body));
      return isNew ? created(reservation) : ok(reservation);
    });
    r.post('/reservations/:orderId/commit', async (req) =>
      ok(await commitReservation(db, parse(orderParams, req.params).orderId)),
    );
    r.post('/reservations/:orderId/release', async (req) =>
      ok(await releaseReservation(db, parse(orderParams, req.params).orderId)),
    );
    r.get('/reservations/:orderId', async (req) => ok(await getReservation(db, parse(orderParams, req.params).orderId)));

    r.post('/restocks', async (req) => {
      const { created: isNew, restock: done } = await restock(db, parseBody(restockSchema, req.body));
      return isNew ? created(done) : ok(done);
    });
  };
}
