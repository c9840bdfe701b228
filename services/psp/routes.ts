import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount } from '../common/schemas.ts';
import { capturePayment, createPayment, findPayments, getPayment, voidPayment } from './payments.ts';

const authorizeSchema = z.object({
  amountMinor: minorAmount,
  currency,
  reference: id,
  card: z.object({ number: z.string().regex(/^\d{12,19}$/, 'must be 12 to 19 digits') }),
});
const captureSchema = z.object({ amountMinor: minorAmount });
const paymentParams = z.object({ id });
const listQuery = z.object({ reference: id });

export function pspRoutes(db: Db, options: { timeoutCardMs: number }) {
  return (r: ServiceRouter) => {
    r.post('/v1/payments', async (req) => created(await createPayment(db, parseBody(authorizeSchema, req.body), options.timeoutCardMs)));
    r.post('/v1/payments/:id/capture', async (req) =>
      ok(await capturePayment(db, parse(paymentParams, req.params).id, parseBody(captureSchema, req.body).amountMinor)),
    );
    r.post('/v1/payments/:id/void', async (req) => ok(await voidPayment(db, parse(paymentParams, req.params).id)));
    r.get('/v1/payments/:id', async (req) => ok(await getPayment(db, parse(paymentParams, req.params).id)));
    r.get('/v1/payments', async (req) => ok(await findPayments(db, parse(listQuery, req.query).reference)));
  };
}
