import type { Db } from '../../lib/db.ts';
import { createServiceApp, type ServiceAppOptions } from '../common/app.ts';
import { createCatalogueClient } from '../inventory/catalogue-client.ts';
import { orderRoutes } from './routes.ts';

export interface OrdersAppOptions extends ServiceAppOptions {
  /** The inventory service, whose catalogue prices every order. */
  inventoryUrl: string;
  /** Sent to the inventory service as `Authorization: Bearer` (the first of SERVICE_API_KEYS). */
  serviceKey: string;
  /** Deadline for one catalogue look-up (default 2 s). */
  catalogueTimeoutMs?: number;
}

export function createOrdersApp(db: Db, options: OrdersAppOptions) {
  const catalogue = createCatalogueClient(options.inventoryUrl, {
    serviceKey: options.serviceKey,
    timeoutMs: options.catalogueTimeoutMs,
  });
  return createServiceApp('orders', db, orderRoutes(db, catalogue), options);
}
