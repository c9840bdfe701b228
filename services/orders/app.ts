import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { orderRoutes } from './routes.ts';

export function createOrdersApp(db: Db, options: ServiceAppOptions = {}) {
  return createServiceApp('orders', db, orderRoutes(db), options);
}
