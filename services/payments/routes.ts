import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { accepted, ok, type Reply } from '../common/reply.ts';
import { currency, id, minorAmount, positiveAmount } from '../common/schemas.ts';
import { CARD_BRANDS, PAYMENT_METHOD_TOKEN } from '../../shared/payments.ts';
import {
  type PaymentView,
  authorizePayment,
  capturePayment,
  getPayment,
  isPending,
  listPayments,
  lookupPayments,
  MAX_LIST_PAGE,
  MAX_LOOKUP,
  syncPayment,
  voidPayment,
} from './payments.ts';
import type { PspClient } from './psp-client.ts';
import { getRefund, recordManualRefund, requestRefund, retryRefund, syncRefund } from './refunds.ts';

const authorizeSchema = z.object({
  orderId: id,
  amountMinor: minorAmount,
  currency,
  paymentMethod: z.object({
    token: z.string().regex(PAYMENT_METHOD_TOKEN, 'must be a payment-method token (pm_…) from the provider'),
    brand: z.enum(CARD_BRANDS),
    last4: z.string().regex(/^\d{4}$/, 'must be four digits'),
  }),
});
const refundSchema = z.object({ refundId: id, amountMinor: positiveAmount, reason: z.string().trim().min(1).max(500) });
const manualRefundSchema = z.object({ reference: id, by: id });
const orderParams = z.object({ orderId: id });
const refundParams = z.object({ refundId: id });
const listQuery = z.object({
  updatedSince: z.iso.datetime({ offset: true }).transform((value) => new Date(value)),
  /** The `nextCursor` of the page before: the last order id it listed. */
  after: id.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_PAGE).default(MAX_LIST_PAGE),
});
const lookupSchema = z.object({ orderIds: z.array(id).min(1).max(MAX_LOOKUP) });

/** 202 while the provider has yet to decide, 200 once the outcome is known. */
const answer = (payment: PaymentView): Reply => (isPending(payment.status) ? accepted(payment) : ok(payment));

export function paymentRoutes(db: Db, psp: PspClient) {
  const orderId = (params: unknown) => parse(orderParams, params).orderId;
  const refundId = (params: unknown) => parse(refundParams, params).refundId;
  return (r: ServiceRouter) => {
    r.post('/payments/authorize', async (req) => answer(await authorizePayment(db, psp, parseBody(authorizeSchema, req.body))));
    r.postRepeatable('/payments/:orderId/sync', async (req) => ok(await syncPayment(db, psp, orderId(req.params))));
    r.post('/payments/:orderId/capture', async (req) => answer(await capturePayment(db, psp, orderId(req.params))));
    r.post('/payments/:orderId/void', async (req) => ok(await voidPayment(db, psp, orderId(req.params))));
    r.get('/payments/:orderId', async (req) => ok(await getPayment(db, orderId(req.params))));
    r.get('/payments', async (req) => ok(await listPayments(db, parse(listQuery, req.query))));
    // a read, so safe to repeat; a POST only because 500 order ids do not fit in a URL
    r.postRepeatable('/payments/lookup', async (req) => ok({ payments: await lookupPayments(db, parseBody(lookupSchema, req.body).orderIds) }));

    r.post('/payments/:orderId/refunds', async (req) => {
      const { created, refund } = await requestRefund(db, psp, { orderId: orderId(req.params), ...parseBody(refundSchema, req.body) });
      return created ? accepted(refund) : ok(refund);
    });
    r.postRepeatable('/payments/refunds/:refundId/sync', async (req) => ok(await syncRefund(db, psp, refundId(req.params))));
    r.post('/payments/refunds/:refundId/retry', async (req) => accepted(await retryRefund(db, psp, refundId(req.params))));
    r.post('/payments/refunds/:refundId/record-manual', async (req) =>
      ok(await recordManualRefund(db, refundId(req.params), parseBody(manualRefundSchema, req.body))),
    );
    r.get('/payments/refunds/:refundId', async (req) => ok(await getRefund(db, refundId(req.params))));
  };
}
