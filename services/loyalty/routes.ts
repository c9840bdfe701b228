import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount } from '../common/schemas.ts';
import { awardPoints, getAccount, reverseAward, reversePoints } from './awards.ts';

const awardSchema = z.object({ orderId: id, customerId: id, amountMinor: minorAmount, currency });
const reversalSchema = z.object({ reversalId: id, points: z.number().int().min(0).max(1_000_000_000) });
const orderParams = z.object({ orderId: id });
const customerParams = z.object({ customerId: id });

export function loyaltyRoutes(db: Db) {
  return (r: ServiceRouter) => {
    r.get('/accounts/:customerId', async (req) => ok(await getAccount(db, parse(customerParams, req.params).customerId)));
    r.post('/awards', async (req) => {
      const { created: isNew, entry } = await awardPoints(db, parseBody(awardSchema, req.body));
      return isNew ? created(entry) : ok(entry);
    });
    r.post('/awards/:orderId/reverse', async (req) => {
      const { created: isNew, entry } = await reverseAward(db, parse(orderParams, req.params).orderId);
      return isNew ? created(entry) : ok(entry);
    });
    r.post('/awards/:orderId/reversals', async (req) => {
      const { created: isNew, entry } = await reversePoints(db, parse(orderParams, req.params).orderId, parseBody(reversalSchema, req.body));
      return isNew ? created(entry) : ok(entry);
    });
  };
}
