import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { parse, parseBody } from '../../lib/http-errors.ts';
import type { ServiceRouter } from '../common/app.ts';
import { created, ok } from '../common/reply.ts';
import { currency, id, minorAmount } from '../common/schemas.ts';
import { createCampaign, getCampaign } from './campaigns.ts';
import { getCoupon } from './coupons.ts';
import { getLock, lockCoupon, redeemCoupon, returnCoupon, unlockCoupon } from './locks.ts';
import { confirmQuota, getQuotaReservation, releaseQuota, reserveQuota } from './quota.ts';
import { getGrant, getWallet, grantCoupon } from './wallet.ts';

const lockSchema = z.object({ orderId: id, code: id, customerId: id, subtotalMinor: minorAmount, currency });
const orderParams = z.object({ orderId: id });
const codeParams = z.object({ code: id });

const instant = z.iso.datetime({ offset: true }).transform((value) => new Date(value));
const campaignSchema = z
  .object({
    campaignId: id,
    name: z.string().trim().min(1).max(200),
    totalQuota: z.number().int().min(0).max(100_000_000),
    perCustomerLimit: z.number().int().min(1).max(1_000_000),
    validFrom: instant,
    validUntil: instant,
    kind: z.enum(['FIXED', 'PERCENT']),
    value: z.number().int().min(1).max(1_000_000_000),
    currency,
    minSpendMinor: minorAmount.default(0),
  })
  .superRefine((c, ctx) => {
    if (c.validUntil.getTime() <= c.validFrom.getTime()) {
      ctx.addIssue({ code: 'custom', message: 'must be after validFrom', path: ['validUntil'] });
    }
    if (c.kind === 'PERCENT' && c.value > 100) ctx.addIssue({ code: 'custom', message: 'a percentage is at most 100', path: ['value'] });
  });
const campaignParams = z.object({ campaignId: id });
const reserveSchema = z.object({ requestId: id, customerId: id });
const requestParams = z.object({ requestId: id });
const grantSchema = z.object({ requestId: id, campaignId: id, customerId: id });
const customerParams = z.object({ customerId: id });

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

    r.post('/campaigns', async (req) => {
      const { created: isNew, campaign } = await createCampaign(db, parseBody(campaignSchema, req.body));
      return isNew ? created(campaign) : ok(campaign);
    });
    r.get('/campaigns/:campaignId', async (req) => ok(await getCampaign(db, parse(campaignParams, req.params).campaignId)));

    r.post('/campaigns/:campaignId/quota-reservations', async (req) => {
      const { campaignId } = parse(campaignParams, req.params);
      const { created: isNew, reservation } = await reserveQuota(db, { campaignId, ...parseBody(reserveSchema, req.body) });
      return isNew ? created(reservation) : ok(reservation);
    });
    r.post('/quota-reservations/:requestId/confirm', async (req) => ok(await confirmQuota(db, parse(requestParams, req.params).requestId)));
    r.post('/quota-reservations/:requestId/release', async (req) => ok(await releaseQuota(db, parse(requestParams, req.params).requestId)));
    r.get('/quota-reservations/:requestId', async (req) => ok(await getQuotaReservation(db, parse(requestParams, req.params).requestId)));

    r.post('/wallet/grants', async (req) => {
      const { created: isNew, grant } = await grantCoupon(db, parseBody(grantSchema, req.body));
      return isNew ? created(grant) : ok(grant);
    });
    r.get('/wallet/grants/:requestId', async (req) => ok(await getGrant(db, parse(requestParams, req.params).requestId)));
    r.get('/customers/:customerId/wallet', async (req) => ok(await getWallet(db, parse(customerParams, req.params).customerId)));
  };
}
