// Inventory service: reserve stock for an order, then commit it (paid) or release it (undo).
import { callService } from './http.ts';

export interface StockLine {
  sku: string;
  quantity: number;
}
export interface ReserveStockInput {
  idempotencyKey: string;
  orderId: string;
  lines: StockLine[];
}
export interface ReservationInput {
  idempotencyKey: string;
  orderId: string;
}

export function inventoryActivities(baseUrl: string) {
  const service = 'inventory';
  const reservation = (orderId: string, action: string) => `/reservations/${encodeURIComponent(orderId)}/${action}`;
  return {
    async reserveStock({ idempotencyKey, orderId, lines }: ReserveStockInput): Promise<void> {
      await callService({ service, baseUrl, path: '/reservations', body: { orderId, lines }, idempotencyKey });
    },

    /** Safe before or without a reservation: the service records a tombstone, so a late reserve is refused. */
    async releaseStock({ idempotencyKey, orderId }: ReservationInput): Promise<void> {
      await callService({ service, baseUrl, path: reservation(orderId, 'release'), body: {}, idempotencyKey });
    },

    async commitStock({ idempotencyKey, orderId }: ReservationInput): Promise<void> {
      await callService({ service, baseUrl, path: reservation(orderId, 'commit'), body: {}, idempotencyKey });
    },
  };
}
