import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { loyaltyRoutes } from './routes.ts';

export function createLoyaltyApp(db: Db, options: ServiceAppOptions = {}) {
  return createServiceApp('loyalty', db, loyaltyRoutes(db), options);
}
