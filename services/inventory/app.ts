import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { inventoryRoutes } from './routes.ts';

export function createInventoryApp(db: Db, options: ServiceAppOptions = {}) {
  return createServiceApp('inventory', db, inventoryRoutes(db), options);
}
