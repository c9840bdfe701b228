// Refunds through the API, as support asks for them and finance decides: partial (with a line
// put back on the shelf), full after a partial, three at once on one order that add up to more
// than was captured, large ones that wait for an approval (approved or rejected). A refund the
// provider refuses waits for an operator: once the provider takes refunds again, finance
// retries it or records it as paid back by hand, in turn.
import type { Client } from '@temporalio/client';
import { refundIdFor } from '../../shared/refunds.ts';
import { ChaosApi, errorCode, sleep, type Caller } from './api.ts';
import type { PaidOrder } from './checkouts.ts';
import type { RefundJobPlan } from './fixtures.ts';
import { waitForRun } from './runs.ts';

const SUPPORT: Caller = ['support', 'sup-chaos'];
const FINANCE: Caller = ['finance', 'fin-chaos'];
const APPROVAL_THRESHOLD_MINOR = 10_000;
const WAITING_FOR_A_PERSON = new Set(['AWAITING_APPROVAL', 'ESCALATED', 'NEEDS_OPERATOR']);

export interface RefundTally {
  requested: number;
  refusedAtStart: Record<string, number>;
  outcomes: Record<string, number>;
  approved: number;
  rejected: number;
  providerRefusals: number;
  operatorRetries: number;
  manualRefunds: number;
  /** Refused by the provider, then the operator's retry or manual refund refused too (the money went to another refund). */
  abandoned: number;
  skipped: string[];
  unfinished: string[];
}

export function newRefundTally(): RefundTally {
  return { requested: 0, refusedAtStart: {}, outcomes: {}, approved: 0, rejected: 0, providerRefusals: 0, operatorRetries: 0, manualRefunds: 0, abandoned: 0, skipped: [], unfinished: [] };
}

const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

/** Paid orders as the checkouts report them; each job takes its own (a partial's follow-up shares it). */
export class PaidOrders {
  private readonly orders: PaidOrder[] = [];
  private closed = false;
  add(order: PaidOrder): void {
    this.orders.push(order);
  }
  /** Every checkout has ended: no order of the kind a job waits for will come any more. */
  close(): void {
    this.closed = true;
  }
  /** The first order that `fits`; once every checkout has ended, any; null when there is none left. */
  async take(fits: (order: PaidOrder) => boolean, deadline: number): Promise<PaidOrder | null> {
    for (;;) {
      const at = this.orders.findIndex(fits);
      const index = at >= 0 ? at : this.closed && this.orders.length > 0 ? 0 : -1;
      if (index >= 0) return this.orders.splice(index, 1)[0]!;
      if (this.closed || Date.now() > deadline) return null;
      await sleep(500);
    }
  }
}

export interface RefundDriverContext {
  api: ChaosApi;
  client: Client;
  orders: PaidOrders;
  tally: RefundTally;
  deadline: number;
  /** True while the provider refuses every refund: retrying then would only fail again. */
  providerRefusing: () => boolean;
  runId: string;
  log: (message: string) => void;
  /** Whose turn it is among the operator's ways out of a provider refusal: alternates retry and manual refund. */
  nextOperatorAction: () => 'retry' | 'refund-manually';
}

/** Runs one job; a `partial` job hands its order to the `full-after-partial` job after it. */
export async function driveRefundJob(
  ctx: RefundDriverContext,
  job: RefundJobPlan,
  handOver: { fromPrevious?: Promise<PaidOrder | null>; toNext?: (order: PaidOrder | null) => void },
): Promise<void> {
  const needsApproval = job.kind === 'approve' || job.kind === 'reject';
  let order: PaidOrder | null;
  if (job.kind === 'full-after-partial') order = (await handOver.fromPrevious) ?? null;
  else order = await ctx.orders.take((o) => (needsApproval ? o.totalMinor > APPROVAL_THRESHOLD_MINOR : o.totalMinor <= APPROVAL_THRESHOLD_MINOR), ctx.deadline);
  if (!order) {
    ctx.tally.skipped.push(`job ${job.index} (${job.kind}): no paid order to refund`);
    handOver.toNext?.(null);
    return;
  }
  ctx.log(`refund job ${job.index} (${job.kind}): order ${order.orderId}, total ${order.totalMinor}`);
  const requestId = (n = 0) => `rf-${ctx.runId}-${job.index}${n ? `-${n}` : ''}`;
  const decision = job.kind === 'reject' ? 'reject' : 'approve';
  try {
    if (job.kind === 'partial') {
      const first = order.lines[0]!;
      await refund(ctx, requestId(), order, Math.max(1, Math.floor(order.totalMinor / 3)), [{ sku: first.sku, quantity: 1 }], decision);
    } else if (job.kind === 'concurrent') {
      const share = Math.max(1, Math.floor(order.totalMinor * 0.45));
      await Promise.all([1, 2, 3].map((n) => refund(ctx, requestId(n), order, share, [], decision)));
    } else {
      await refund(ctx, requestId(), order, 'full', [], decision);
    }
  } finally {
    handOver.toNext?.(job.kind === 'partial' ? order : null);
  }
}

async function refund(
  ctx: RefundDriverContext,
  requestId: string,
  order: PaidOrder,
  amount: number | 'full',
  restock: { sku: string; quantity: number }[],
  decision: 'approve' | 'reject',
): Promise<void> {
  const { api, tally } = ctx;
  const started = await api.call('POST', '/refunds', SUPPORT, {
    body: { requestId, orderId: order.orderId, amount, reason: 'chaos: customer return', restock },
    giveUpAfterMs: Math.max(ctx.deadline - Date.now(), 1_000),
  });
  if (started.status !== 202) {
    bump(tally.refusedAtStart, `${started.status} ${errorCode(started) ?? ''}`.trim());
    return;
  }
  tally.requested += 1;
  const refundId = refundIdFor(requestId);
  let lastStatus: string | undefined;
  for (;;) {
    // waits on the server (closed, or FlowStatus asks for a person) rather than the state query
    const run = await waitForRun(ctx.client, refundId, ctx.deadline, { ready: (s) => WAITING_FOR_A_PERSON.has(s.flowStatus ?? '') && !(s.flowStatus === 'NEEDS_OPERATOR' && ctx.providerRefusing()) });
    if (!run || Date.now() > ctx.deadline) {
      tally.unfinished.push(`${refundId} (${run?.flowStatus ?? 'unknown'})`);
      return;
    }
    if (run.execution !== 'RUNNING') {
      const view = await api.call('GET', `/refunds/${refundId}`, SUPPORT, { giveUpAfterMs: 30_000 });
      bump(tally.outcomes, view.status === 200 ? view.body.status : `HTTP ${view.status}`);
      return;
    }
    const status = run.flowStatus!;
    let accepted = false;
    if (status === 'AWAITING_APPROVAL' || status === 'ESCALATED') {
      const answer = await api.call('POST', `/refunds/${refundId}/${decision}`, FINANCE, { body: { reason: `chaos: ${decision}d by finance` } });
      accepted = landed(answer);
      if (accepted) tally[decision === 'approve' ? 'approved' : 'rejected'] += 1;
    } else if (status === 'NEEDS_OPERATOR') {
      if (lastStatus !== status) {
        tally.providerRefusals += 1;
        ctx.log(`${refundId}: refused by the provider, waited for an operator`);
      }
      const resolved = await resolveRefusedRefund(api, ctx.client, refundId, ctx.nextOperatorAction(), ctx.deadline);
      if (resolved) {
        tally[resolved === 'refund-manually' ? 'manualRefunds' : resolved === 'retry' ? 'operatorRetries' : 'abandoned'] += 1;
        ctx.log(`${refundId}: operator ${resolved}`);
        lastStatus = status;
        continue;
      }
    }
    lastStatus = status;
    // FlowStatus moves on only once the run has carried the decision out: until then the refund
    // still looks as if it waited, and a second decision would only be refused.
    if (accepted) await waitForRun(ctx.client, refundId, Math.min(ctx.deadline, Date.now() + 30_000), { ready: (s) => s.flowStatus !== status });
    else await sleep(2_000);
  }
}

/**
 * An operator's way out of NEEDS_OPERATOR: `first` (ask the provider again, or record a refund
 * paid back by hand). If the run refuses to carry it out and waits again (the money is gone, say
 * to a concurrent refund), the operator abandons the refund with that reason. Returns what ended
 * the wait, or null when the run did not take the action (to be tried again).
 */
export async function resolveRefusedRefund(
  api: ChaosApi,
  client: Client,
  refundId: string,
  first: 'retry' | 'refund-manually',
  deadline: number,
): Promise<'retry' | 'refund-manually' | 'abandon' | null> {
  const body = first === 'retry'
    ? { reason: 'chaos: the provider takes refunds again' }
    : { reason: 'chaos: paid back by bank transfer', reference: `SEPA-${refundId}` };
  if (!landed(await api.call('POST', `/refunds/${refundId}/${first}`, FINANCE, { body }))) return null;
  const moved = await waitForRun(client, refundId, Math.min(deadline, Date.now() + 20_000), { ready: (s) => s.flowStatus !== 'NEEDS_OPERATOR' });
  if (moved?.flowStatus !== 'NEEDS_OPERATOR') return first;
  // still waiting: the run says why it could not carry the action out
  const view = await api.call('GET', `/refunds/${refundId}`, FINANCE, { giveUpAfterMs: 20_000 });
  const failure: string | null = view.body?.state?.failure ?? null;
  if (view.body?.status !== 'NEEDS_OPERATOR' || !failure || view.body?.state?.operatorAction) return first;
  const abandoned = await api.call('POST', `/refunds/${refundId}/abandon`, FINANCE, { body: { reason: `chaos: ${failure}`.slice(0, 2000) } });
  return landed(abandoned) ? 'abandon' : null;
}

/**
 * The run took the decision: now, or on an earlier attempt whose answer was lost (503
 * action_unconfirmed while the worker restarted, then a refusal because it is being carried out).
 */
function landed(answer: { status: number; body: any }): boolean {
  return answer.status === 200 || (answer.status === 409 && ['action_pending', 'already_decided'].includes(errorCode(answer) ?? ''));
}
