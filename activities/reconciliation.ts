// Reconciliation: reads both sides over HTTP (the provider's settlement report and payments,
// our payments and orders), writes the report to our own tables, and supports the two actions
// that move money or orders: a refund (what is still held, and for money no payment of ours
// stands for, a refund straight at the provider; our own payments are refunded by the Refund
// workflow) and reading an order back after a checkout was nudged. Every write is idempotent:
// a mismatch's id is its natural key, runs are upserts, a provider refund carries a key.
import { Context } from '@temporalio/activity';
import { Prisma } from '../generated/prisma/client.ts';
import type { ServiceUrls } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import type { MismatchStatus, ResolutionAction } from '../shared/reconciliation.ts';
import {
  classifyPage,
  type Mismatch,
  type OurOrder,
  type OurPayment,
  type Period,
  type ProviderPayment,
  type ReconciliationPage,
  type ReferenceFacts,
  type SettlementTransaction,
} from '../workflows/reconciliation-rules.ts';
import { callService, callServiceUnlessMissing } from './http.ts';

/**
 * References on one page: each service answers one batch read per page, and a page's result (its
 * mismatches and deferred references, never the facts) stays far below Temporal's payload limit.
 */
export const MAX_PAGE_REFERENCES = 500;
/** A page also ends once it holds this many mismatches, so its result stays under ~100 KB however bad the day. */
export const MAX_PAGE_MISMATCHES = 100;
/** A batch read of a few hundred rows may take longer than a single one. */
const BATCH_READ_TIMEOUT_MS = 30_000;

export interface CollectPageInput {
  period: Period;
  /** The page before's `nextCursor`; null for the first page. */
  after: string | null;
  /** References on the page, at most (and by default) MAX_PAGE_REFERENCES. */
  limit?: number;
}

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

interface SettlementPage {
  transactions: SettlementTransaction[];
  nextCursor?: string | null;
}
interface PaymentPage {
  payments: OurPayment[];
  nextCursor?: string | null;
}

export function reconciliationActivities(urls: Pick<ServiceUrls, 'orders' | 'payments' | 'psp'>, db: Db) {
  const psp = <T>(path: string) => callService<T>({ service: 'psp', baseUrl: urls.psp, path, method: 'GET' });
  const providerPayment = (id: string) => psp<ProviderPayment>(`/v1/payments/${encodeURIComponent(id)}`).then(toProviderPayment);
  const ourPayment = async (orderId: string) => {
    const body = await callServiceUnlessMissing<OurPayment>({
      service: 'payments', baseUrl: urls.payments, path: `/payments/${encodeURIComponent(orderId)}`, method: 'GET',
    });
    return body ? toOurPayment(body) : null;
  };
  const batchRead = <T>(service: 'orders' | 'payments' | 'psp', path: string, body: unknown) =>
    callService<T>({ service, baseUrl: urls[service], path, body, timeoutMs: BATCH_READ_TIMEOUT_MS });

  /**
   * Both sides' facts for the references after `after`, at most `limit` of them, in reference
   * order: a page of the settlement report and a page of our changed payments, then one batch
   * read per service for the page's references.
   */
  async function readFactsPage({ start, end }: Period, after: string | null, limit: number, progress: (step: string) => void) {
    const page = `limit=${limit}${after === null ? '' : `&after=${encodeURIComponent(after)}`}`;
    const list = <T>(service: 'payments' | 'psp', path: string) => callService<T>({ service, baseUrl: urls[service], path, method: 'GET', timeoutMs: BATCH_READ_TIMEOUT_MS });
    const [report, changed] = await Promise.all([
      list<SettlementPage>('psp', `/v1/settlements?from=${encodeURIComponent(start)}&to=${encodeURIComponent(end)}&${page}`),
      list<PaymentPage>('payments', `/payments?updatedSince=${encodeURIComponent(start)}&${page}`),
    ]);
    progress('listed the settlement report and our changed payments');
    // Each list is complete up to its own last reference, so the page ends at the nearer of the two.
    let last = [report.nextCursor, changed.nextCursor].filter((c): c is string => !!c).sort()[0] ?? null;
    let references = [...new Set([...report.transactions.map((t) => t.reference), ...changed.payments.map((p) => p.orderId)])]
      .filter((reference) => last === null || reference <= last)
      .sort();
    if (references.length > limit) {
      references = references.slice(0, limit);
      last = references.at(-1)!;
    }
    if (references.length === 0) return { facts: [], nextCursor: null };

    const ours = new Map(changed.payments.map((p) => [p.orderId, toOurPayment(p)]));
    const unchanged = references.filter((reference) => !ours.has(reference));
    const [provider, others, orders] = await Promise.all([
      batchRead<{ payments: ProviderPayment[] }>('psp', '/v1/payments/lookup', { references }),
      unchanged.length === 0 ? { payments: [] } : batchRead<{ payments: OurPayment[] }>('payments', '/payments/lookup', { orderIds: unchanged }),
      batchRead<{ orders: OurOrder[] }>('orders', '/orders/lookup', { orderIds: references }),
    ]);
    progress('read the page\'s payments and orders');
    for (const p of others.payments) ours.set(p.orderId, toOurPayment(p));
    const orderOf = new Map(orders.orders.map((o) => [o.id, o]));
    const settlementOf = byReference(report.transactions);
    const providerOf = byReference(provider.payments);
    const facts = references.map((reference): ReferenceFacts => {
      const order = orderOf.get(reference);
      return {
        reference,
        settlement: settlementOf.get(reference) ?? [],
        providerPayments: (providerOf.get(reference) ?? []).map(toProviderPayment),
        payment: ours.get(reference) ?? null,
        order: order ? { id: order.id, status: order.status, totalMinor: order.totalMinor, currency: order.currency, updatedAt: order.updatedAt ?? null } : null,
      };
    });
    return { facts, nextCursor: last };
  }

  return {
    /**
     * One page of the run's references, classified: its mismatches and deferred references, and
     * where the next page starts. Heartbeats as it goes, so a worker lost mid-page is noticed in
     * seconds, and the retry reads that same page again (the workflow holds the cursor).
     */
    async collectReconciliationPage({ period, after, limit = MAX_PAGE_REFERENCES }: CollectPageInput): Promise<ReconciliationPage> {
      const heartbeat = (step: string) => Context.current().heartbeat({ after, step });
      heartbeat('started');
      const { facts, nextCursor } = await readFactsPage(period, after, Math.min(limit, MAX_PAGE_REFERENCES), heartbeat);
      return classifyPage(facts, period, nextCursor, MAX_PAGE_MISMATCHES);
    },

    /**
     * Every fact of the period in one result: only for runs started before reconciliation paged
     * (they replay calling this); a busy day's result exceeds the payload limit.
     */
    async collectReconciliationFacts(period: Period): Promise<ReferenceFacts[]> {
      const facts: ReferenceFacts[] = [];
      let after: string | null = null;
      do {
        const page = await readFactsPage(period, after, MAX_PAGE_REFERENCES, (step) => Context.current().heartbeat({ after, step }));
        facts.push(...page.facts);
        after = page.nextCursor;
      } while (after !== null);
      return facts;
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

function byReference<T extends { reference: string }>(items: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(item.reference);
    if (group) group.push(item);
    else groups.set(item.reference, [item]);
  }
  return groups;
}
