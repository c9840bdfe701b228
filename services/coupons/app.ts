import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { couponRoutes } from './routes.ts';

export function createCouponsApp(db: Db, options: ServiceAppOptions = {}) {
  return createServiceApp('coupons', db, couponRoutes(db), options);
}
