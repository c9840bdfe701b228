// Orders service: the order's status machine (PENDING → AWAITING_PAYMENT → PAID | CANCELLED).
import type { CheckoutLine } from '../shared/checkout.ts';
import { callService, callServiceUnlessMissing } from './http.ts';

export interface CreateOrderInput {
  idempotencyKey: string;
  orderId: string;
  checkoutId: string;
  customerId: string;
  currency: string;
  lines: CheckoutLine[];
}
export interface CreateOrderResult {
  orderId: string;
  subtotalMinor: number;
}
export interface CancelOrderInput {
  idempotencyKey: string;
  orderId: string;
  reason: string;
}
export interface CancelOrderResult {
  /** False when the order was never created: nothing to cancel. */
  cancelled: boolean;
}
export interface MarkAwaitingPaymentInput {
  idempotencyKey: string;
  orderId: string;
  discountMinor: number;
  couponCode: string | null;
}
export interface MarkAwaitingPaymentResult {
  totalMinor: number;
}
export interface MarkOrderPaidInput {
  idempotencyKey: string;
  orderId: string;
  paymentId: string;
  amountMinor: number;
}

interface OrderBody {
  id: string;
  subtotalMinor: number;
  totalMinor: number;
}

export function orderActivities(baseUrl: string) {
  const service = 'orders';
  return {
    /** The service prices the order from the catalogue; a line's price is sent only as the quote it checks. */
    async createOrder({ idempotencyKey, lines, ...order }: CreateOrderInput): Promise<CreateOrderResult> {
      const quoted = lines.map(({ sku, quantity, unitPriceMinor }) =>
        unitPriceMinor === undefined ? { sku, quantity } : { sku, quantity, quotedUnitPriceMinor: unitPriceMinor },
      );
      const body = await callService<OrderBody>({ service, baseUrl, path: '/orders', body: { ...order, lines: quoted }, idempotencyKey });
      return { orderId: body.id, subtotalMinor: body.subtotalMinor };
    },

    async cancelOrder({ idempotencyKey, orderId, reason }: CancelOrderInput): Promise<CancelOrderResult> {
      const path = `/orders/${encodeURIComponent(orderId)}/cancel`;
      const body = await callServiceUnlessMissing<OrderBody>({ service, baseUrl, path, body: { reason }, idempotencyKey });
      return { cancelled: body !== undefined };
    },

    async markAwaitingPayment({ idempotencyKey, orderId, ...payment }: MarkAwaitingPaymentInput): Promise<MarkAwaitingPaymentResult> {
      const path = `/orders/${encodeURIComponent(orderId)}/await-payment`;
      const body = await callService<OrderBody>({ service, baseUrl, path, body: payment, idempotencyKey });
      return { totalMinor: body.totalMinor };
    },

    async markOrderPaid({ idempotencyKey, orderId, ...payment }: MarkOrderPaidInput): Promise<void> {
      const path = `/orders/${encodeURIComponent(orderId)}/pay`;
      await callService({ service, baseUrl, path, body: payment, idempotencyKey });
    },
  };
}
