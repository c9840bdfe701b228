// Reconciliation: reads both sides over HTTP (the provider's settlement report and payments,
// our payments and orders), writes the report to our own tables, and supports the two actions
// that move money or orders: a refund (what is still held, and for money no payment of ours
// stands for, a refund straight at the provider; our own payments are refunded by the Refund
// workflow) and reading an order back after a checkout was nudged. Every write is idempotent:
// a mismatch's id is its natural key, runs are upserts, a provider refund carries a key.
import { Prisma } from '../generated/prisma/client.ts';
import type { ServiceUrls } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import type { MismatchStatus, ResolutionAction } from '../shared/reconciliation.ts';
import type {
  Mismatch,
  OurOrder,
  OurPayment,
  Period,
  ProviderPayment,
  ReferenceFacts,
  SettlementTransaction,
} from '../workflows/reconciliation-rules.ts';
import { callService, callServiceUnlessMissing } from './http.ts';

/** Reference lookups in flight at once: enough to be quick, few enough not to crowd the services. */
const LOOKUP_CONCURRENCY = 8;

export interface RecordRunInput {
  runId: string;
  workflowId: string;
  period: Period;
}
export interface RecordMismatchesInput {
  runId: string;
  mismatches: Mismatch[];
}
export interface RecordedMismatch {
  id: string;
  status: MismatchStatus;
  /** First detected by this run (false: an earlier run already recorded it). */
  isNew: boolean;
}
export interface RunCounts {
  examined: number;
  deferred: number;
  detected: number;
  newMismatches: number;
  alreadyKnown: number;
  autoResolved: number;
  flagged: number;
}
export interface FinishRunInput {
  runId: string;
  counts: RunCounts;
  report: Record<string, unknown>;
}
export interface MarkMismatchInput {
  id: string;
  status: MismatchStatus;
  action: ResolutionAction;
  by: string;
  note: string;
}
export interface NoteMismatchInput {
  id: string;
  /** Merged into the mismatch's details (e.g. why it waits for an operator). */
  details: Record<string, string | number | boolean | null>;
}
export interface RefundTargetInput {
  reference: string;
  pspPaymentId: string;
}
export interface RefundTarget {
  /** Captured and not refunded at the provider. */
  heldMinor: number;
  currency: string;
  /** The payment is our order's (our payments record points at it): refund it through the Refund workflow. */
  ours: boolean;
}
export interface StartProviderRefundInput {
  idempotencyKey: string;
  pspPaymentId: string;
  amountMinor: number;
  /** Our reference for the refund at the provider. */
  reference: string;
}
/** A refund straight at the provider (`POST /v1/payments/:id/refunds`, `GET /v1/refunds/:id`). */
export interface ProviderRefundView {
  refundId: string;
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  amountMinor: number;
  failureReason: string | null;
}

type PaymentList = OurPayment[] | { payments: OurPayment[] };
type ProviderList = ProviderPayment[] | { payments: ProviderPayment[] };

export function reconciliationActivities(urls: Pick<ServiceUrls, 'orders' | 'payments' | 'psp'>, db: Db) {
  const psp = <T>(path: string) => callService<T>({ service: 'psp', baseUrl: urls.psp, path, method: 'GET' });
  const providerPayment = (id: string) => psp<ProviderPayment>(`/v1/payments/${encodeURIComponent(id)}`).then(toProviderPayment);
  const ourPayment = async (orderId: string) => {
    const body = await callServiceUnlessMissing<OurPayment>({
      service: 'payments', baseUrl: urls.payments, path: `/payments/${encodeURIComponent(orderId)}`, method: 'GET',
    });
    return body ? toOurPayment(body) : null;
  };

  return {
    /** Both sides' facts for every reference that moved in the period, as the rules need them. */
    async collectReconciliationFacts({ start, end }: Period): Promise<ReferenceFacts[]> {
      const period = `from=${encodeURIComponent(start)}&to=${encodeURIComponent(end)}`;
      const { transactions } = await psp<{ transactions: SettlementTransaction[] }>(`/v1/settlements?${period}`);
      const updated = await callService<PaymentList>({
        service: 'payments', baseUrl: urls.payments, path: `/payments?updatedSince=${encodeURIComponent(start)}`, method: 'GET',
      });
      const ourPayments = new Map((Array.isArray(updated) ? updated : updated.payments).map((p) => [p.orderId, toOurPayment(p)]));
      const references = [...new Set([...transactions.map((t) => t.reference), ...ourPayments.keys()])].sort();

      return mapLimited(references, LOOKUP_CONCURRENCY, async (reference): Promise<ReferenceFacts> => {
        const [listed, payment, order] = await Promise.all([
          psp<ProviderList>(`/v1/payments?reference=${encodeURIComponent(reference)}`),
          ourPayments.has(reference) ? ourPayments.get(reference)! : ourPayment(reference),
          callServiceUnlessMissing<OurOrder>({
            service: 'orders', baseUrl: urls.orders, path: `/orders/${encodeURIComponent(reference)}`, method: 'GET',
          }),
        ]);
        return {
          reference,
          settlement: transactions.filter((t) => t.reference === reference),
          providerPayments: (Array.isArray(listed) ? listed : listed.payments).map(toProviderPayment),
          payment,
          order: order ? { id: order.id, status: order.status, totalMinor: order.totalMinor, currency: order.currency, updatedAt: order.updatedAt ?? null } : null,
        };
      });
    },

    async recordRunStarted({ runId, workflowId, period }: RecordRunInput): Promise<void> {
      const data = { workflowId, periodStart: new Date(period.start), periodEnd: new Date(period.end), boundaryGraceMs: period.boundaryGraceMs };
      await db.reconciliationRun.upsert({ where: { id: runId }, create: { id: runId, ...data }, update: {} });
    },

    /** Inserts the mismatches not seen before; a known one is left exactly as it is. */
    async recordMismatches({ runId, mismatches }: RecordMismatchesInput): Promise<RecordedMismatch[]> {
      if (mismatches.length === 0) return [];
      await db.reconciliationMismatch.createMany({
        data: mismatches.map((m) => ({
          id: m.id,
          runId,
          kind: m.kind,
          reference: m.reference,
          pspPaymentId: m.pspPaymentId,
          transactionId: m.transactionId,
          details: { summary: m.summary, autoAction: m.autoAction, ...m.details },
        })),
        skipDuplicates: true,
      });
      const rows = await db.reconciliationMismatch.findMany({
        where: { id: { in: mismatches.map((m) => m.id) } },
        select: { id: true, status: true, runId: true },
      });
      // "new" is judged by the first-detecting run, so a retried activity answers the same
      return rows.map((r) => ({ id: r.id, status: r.status, isNew: r.runId === runId }));
    },

    async recordRunFinished({ runId, counts, report }: FinishRunInput): Promise<void> {
      await db.reconciliationRun.update({
        where: { id: runId },
        data: { ...counts, report: report as Prisma.InputJsonObject, finishedAt: new Date() },
      });
    },

    /** Closes a mismatch; closing it again (a retry) changes nothing. */
    async markMismatch({ id, status, action, by, note }: MarkMismatchInput): Promise<void> {
      await db.reconciliationMismatch.updateMany({
        where: { id, status: 'OPEN' },
        data: { status, action, resolvedBy: by, resolutionNote: note, resolvedAt: new Date() },
      });
    },

    async noteMismatch({ id, details }: NoteMismatchInput): Promise<void> {
      const row = await db.reconciliationMismatch.findUniqueOrThrow({ where: { id }, select: { details: true } });
      const merged = { ...(row.details as Prisma.JsonObject), ...details };
      await db.reconciliationMismatch.update({ where: { id }, data: { details: merged } });
    },

    async getOrderStatus({ orderId }: { orderId: string }): Promise<OurOrder['status'] | null> {
      const order = await callServiceUnlessMissing<OurOrder>({
        service: 'orders', baseUrl: urls.orders, path: `/orders/${encodeURIComponent(orderId)}`, method: 'GET',
      });
      return order?.status ?? null;
    },

    /**
     * What the provider still holds of the payment, and whether it is our order's payment. Ours is
     * synced with the provider first, so the Refund workflow finds the capture on our record.
     */
    async readRefundTarget({ reference, pspPaymentId }: RefundTargetInput): Promise<RefundTarget> {
      const provider = await providerPayment(pspPaymentId);
      const ours = (await ourPayment(reference))?.pspPaymentId === pspPaymentId;
      if (ours) {
        await callService({
          service: 'payments', baseUrl: urls.payments, path: `/payments/${encodeURIComponent(reference)}/sync`, body: {}, timeoutMs: 15_000,
        });
      }
      return { heldMinor: Math.max(provider.capturedMinor - provider.refundedMinor, 0), currency: provider.currency, ours };
    },

    /** Money at the provider that no payment of ours stands for: refunded there directly. The key makes a retry the same refund. */
    async startProviderRefund({ idempotencyKey, pspPaymentId, amountMinor, reference }: StartProviderRefundInput): Promise<ProviderRefundView> {
      const body = await callService<ProviderRefundView>({
        service: 'psp', baseUrl: urls.psp, path: `/v1/payments/${encodeURIComponent(pspPaymentId)}/refunds`,
        body: { amountMinor, reference }, idempotencyKey,
      });
      return toProviderRefund(body);
    },

    /** The provider decides a refund asynchronously: asked afresh each time. */
    async readProviderRefund({ refundId }: { refundId: string }): Promise<ProviderRefundView> {
      return toProviderRefund(await psp<ProviderRefundView>(`/v1/refunds/${encodeURIComponent(refundId)}`));
    },
  };
}

export type ReconciliationActivities = ReturnType<typeof reconciliationActivities>;

function toProviderRefund(r: ProviderRefundView): ProviderRefundView {
  return { refundId: r.refundId, status: r.status, amountMinor: r.amountMinor, failureReason: r.failureReason ?? null };
}

function toProviderPayment(p: ProviderPayment): ProviderPayment {
  return {
    id: p.id,
    reference: p.reference,
    status: p.status,
    amountMinor: p.amountMinor,
    capturedMinor: p.capturedMinor ?? 0,
    refundedMinor: p.refundedMinor ?? 0,
    currency: p.currency,
    updatedAt: p.updatedAt ?? null,
    ...(p.transactions ? { transactions: p.transactions.map(({ id, type, amountMinor, at }) => ({ id, type, amountMinor, at })) } : {}),
  };
}

function toOurPayment(p: OurPayment): OurPayment {
  return {
    paymentId: p.paymentId,
    orderId: p.orderId,
    status: p.status,
    amountMinor: p.amountMinor,
    capturedMinor: p.capturedMinor ?? 0,
    refundedMinor: p.refundedMinor ?? 0,
    currency: p.currency,
    pspPaymentId: p.pspPaymentId ?? null,
    updatedAt: p.updatedAt ?? null,
  };
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
