import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount } from '../common/schemas.ts';
import { getCoupon } from './coupons.ts';
import { getLock, lockCoupon, redeemCoupon, returnCoupon, unlockCoupon } from './locks.ts';

const lockSchema = z.object({ orderId: id, code: id, customerId: id, subtotalMinor: minorAmount, currency });
const orderParams = z.object({ orderId: id });
const codeParams = z.object({ code: id });

export function couponRoutes(db: Db) {
  return (r: ServiceRouter) => {
    r.get('/coupons/:code', async (req) => ok(await getCoupon(db, parse(codeParams, req.params).code)));

    r.post('/locks', async (req) => {
      const { created: isNew, lock } = await lockCoupon(db, parseBody(lockSchema, req.body));
      return isNew ? created(lock) : ok(lock);
    });
    r.post('/locks/:orderId/redeem', async (req) => ok(await redeemCoupon(db, parse(orderParams, req.params).orderId)));
    r.post('/locks/:orderId/unlock', async (req) => ok(await unlockCoupon(db, parse(orderParams, req.params).orderId)));
    r.post('/locks/:orderId/return', async (req) => ok(await returnCoupon(db, parse(orderParams, req.params).orderId)));
    r.get('/locks/:orderId', async (req) => ok(await getLock(db, parse(orderParams, req.params).orderId)));
  };
}
