import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount } from '../common/schemas.ts';
import { authorizePayment, capturePayment, getPayment, voidPayment } from './payments.ts';
import type { PspClient } from './psp-client.ts';

const authorizeSchema = z.object({
  orderId: id,
  amountMinor: minorAmount,
  currency,
  paymentMethod: z.object({ type: z.literal('card'), number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits') }),
});
const orderParams = z.object({ orderId: id });

export function paymentRoutes(db: Db, psp: PspClient) {
  return (r: ServiceRouter) => {
    r.post('/payments/authorize', async (req) => {
      const { created: isNew, payment } = await authorizePayment(db, psp, parseBody(authorizeSchema, req.body));
      return isNew ? created(payment) : ok(payment);
    });
    r.post('/payments/:orderId/capture', async (req) => ok(await capturePayment(db, psp, parse(orderParams, req.params).orderId)));
    r.post('/payments/:orderId/void', async (req) => ok(await voidPayment(db, psp, parse(orderParams, req.params).orderId)));
    r.get('/payments/:orderId', async (req) => ok(await getPayment(db, parse(orderParams, req.params).orderId)));
  };
}
