// Reconciliation: reads both sides over HTTP (the provider's settlement report and payments,
// our payments and orders), writes the report to our own tables, and carries out the two
// actions that move money or orders (refund, and reading an order back after a checkout was
// nudged). Every write is idempotent: a mismatch's id is its natural key, runs are upserts,
// and a refund carries a key derived from the mismatch and first asks what is still held.
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
export interface RefundHeldInput {
  mismatchId: string;
  reference: string;
  pspPaymentId: string;
}
export interface RefundHeldResult {
  /** Refunded by this call (0 when nothing was held any more). */
  refundedMinor: number;
  /** Still captured and not refunded at the provider afterwards. */
  heldMinor: number;
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
     * Refunds whatever the provider still holds of the payment: through our payments service
     * when it is our order's payment (so our record follows), else at the provider directly.
     * Asking first makes a repeat a no-op; the key makes a lost answer replay the same refund.
     */
    async refundHeld({ mismatchId, reference, pspPaymentId }: RefundHeldInput): Promise<RefundHeldResult> {
      const before = await providerPayment(pspPaymentId);
      const held = before.capturedMinor - before.refundedMinor;
      if (held <= 0) return { refundedMinor: 0, heldMinor: 0 };
      const idempotencyKey = `reconciliation:${mismatchId}:refund`;
      const ours = await ourPayment(reference);
      if (ours?.pspPaymentId === pspPaymentId) {
        await callService({
          service: 'payments', baseUrl: urls.payments, path: `/payments/${encodeURIComponent(reference)}/refund`,
          body: { amountMinor: held, reason: `reconciliation ${mismatchId}` }, idempotencyKey, timeoutMs: 15_000,
        });
      } else {
        await callService({
          service: 'psp', baseUrl: urls.psp, path: `/v1/payments/${encodeURIComponent(pspPaymentId)}/refunds`,
          body: { amountMinor: held }, idempotencyKey,
        });
      }
      const after = await providerPayment(pspPaymentId);
      return { refundedMinor: held, heldMinor: after.capturedMinor - after.refundedMinor };
    },
  };
}

export type ReconciliationActivities = ReturnType<typeof reconciliationActivities>;

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
