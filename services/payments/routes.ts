import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { IDEMPOTENCY_HEADER } from '../common/idempotency.ts';
import { accepted, ok, type Reply } from '../common/reply.ts';
import { currency, id, minorAmount, positiveAmount } from '../common/schemas.ts';
import {
  type PaymentView,
  authorizePayment,
  capturePayment,
  getPayment,
  isPending,
  listPayments,
  refundPayment,
  syncPayment,
  voidPayment,
} from './payments.ts';
import type { PspClient } from './psp-client.ts';

const authorizeSchema = z.object({
  orderId: id,
  amountMinor: minorAmount,
  currency,
  paymentMethod: z.object({ type: z.literal('card'), number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits') }),
});
const refundSchema = z.object({ amountMinor: positiveAmount, reason: z.string().trim().min(1).max(500) });
const orderParams = z.object({ orderId: id });
const listQuery = z.object({ updatedSince: z.iso.datetime({ offset: true }).transform((value) => new Date(value)) });

/** 202 while the provider has yet to decide, 200 once the outcome is known. */
const answer = (payment: PaymentView): Reply => (isPending(payment.status) ? accepted(payment) : ok(payment));

export function paymentRoutes(db: Db, psp: PspClient) {
  const orderId = (params: unknown) => parse(orderParams, params).orderId;
  return (r: ServiceRouter) => {
    r.post('/payments/authorize', async (req) => answer(await authorizePayment(db, psp, parseBody(authorizeSchema, req.body))));
    r.postRepeatable('/payments/:orderId/sync', async (req) => ok(await syncPayment(db, psp, orderId(req.params))));
    r.post('/payments/:orderId/capture', async (req) => answer(await capturePayment(db, psp, orderId(req.params))));
    r.post('/payments/:orderId/void', async (req) => ok(await voidPayment(db, psp, orderId(req.params))));
    r.post('/payments/:orderId/refund', async (req) => {
      const { amountMinor, reason } = parseBody(refundSchema, req.body);
      // the idempotency middleware has made sure the key is there
      const refundKey = req.get(IDEMPOTENCY_HEADER)!.trim();
      return ok(await refundPayment(db, psp, { orderId: orderId(req.params), refundKey, amountMinor, reason }));
    });
    r.get('/payments/:orderId', async (req) => ok(await getPayment(db, orderId(req.params))));
    r.get('/payments', async (req) => ok(await listPayments(db, parse(listQuery, req.query).updatedSince)));
  };
}
