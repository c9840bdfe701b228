import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import { MAX_CHECKOUT_LINES, MAX_ORDER_TOTAL_MINOR } from '../../shared/limits.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount, positiveAmount, quantity, uniqueSkus } from '../common/schemas.ts';
import type { CatalogueClient } from '../inventory/catalogue-client.ts';
import { awaitPayment, cancelOrder, createOrder, getOrder, lookupOrders, markPaid, MAX_LOOKUP, recordRefund } from './orders.ts';

const createSchema = z.object({
  orderId: id,
  checkoutId: id,
  customerId: id,
  currency,
  lines: z
    // strict: a caller still sending `unitPriceMinor` learns that prices are no longer taken from it
    .array(z.strictObject({ sku: id, quantity, quotedUnitPriceMinor: z.number().int().min(0).max(MAX_ORDER_TOTAL_MINOR).optional() }))
    .min(1)
    .max(MAX_CHECKOUT_LINES)
    .superRefine(uniqueSkus),
});
const awaitPaymentSchema = z.object({ discountMinor: minorAmount, couponCode: id.nullable().default(null) });
const paySchema = z.object({ paymentId: id, amountMinor: minorAmount });
const cancelSchema = z.object({ reason: z.string().trim().min(1).max(500) });
const refundSchema = z.object({ refundId: id, amountMinor: positiveAmount });
const orderParams = z.object({ orderId: id });
const lookupSchema = z.object({ orderIds: z.array(id).min(1).max(MAX_LOOKUP) });

export function orderRoutes(db: Db, catalogue: CatalogueClient) {
  return (r: ServiceRouter) => {
    r.post('/orders', async (req) => {
      const { created: isNew, order } = await createOrder(db, catalogue, parseBody(createSchema, req.body));
      return isNew ? created(order) : ok(order);
    });
    r.get('/orders/:orderId', async (req) => ok(await getOrder(db, parse(orderParams, req.params).orderId)));
    // a read, so safe to repeat; a POST only because 500 order ids do not fit in a URL
    r.postRepeatable('/orders/lookup', async (req) => ok({ orders: await lookupOrders(db, parseBody(lookupSchema, req.body).orderIds) }));
    r.post('/orders/:orderId/await-payment', async (req) =>
      ok(await awaitPayment(db, parse(orderParams, req.params).orderId, parseBody(awaitPaymentSchema, req.body))),
    );
    r.post('/orders/:orderId/pay', async (req) =>
      ok(await markPaid(db, parse(orderParams, req.params).orderId, parseBody(paySchema, req.body))),
    );
    r.post('/orders/:orderId/cancel', async (req) =>
      ok(await cancelOrder(db, parse(orderParams, req.params).orderId, parseBody(cancelSchema, req.body))),
    );
    r.post('/orders/:orderId/refunds', async (req) => {
      const refund = await recordRefund(db, parse(orderParams, req.params).orderId, parseBody(refundSchema, req.body));
      return refund.created ? created(refund.order) : ok(refund.order);
    });
  };
}
