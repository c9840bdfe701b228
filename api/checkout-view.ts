// What GET /checkouts/:id answers, assembled from Temporal: describe() for the
// execution, the `state` query while it runs, the workflow result once it is done.
import type { Client, WorkflowExecutionDescription, WorkflowExecutionStatusName } from '@temporalio/client';
import {
  checkoutStateQuery,
  checkoutWorkflowId,
  orderIdFor,
  type CheckoutInput,
  type CheckoutResult,
  type CheckoutState,
  type CheckoutStatus,
} from '../shared/checkout.ts';
import { queryWithin, webUiUrl } from './temporal.ts';

/** The checkout workflow's signature, for typed starts. */
export type CheckoutWorkflow = (input: CheckoutInput) => Promise<CheckoutResult>;

/**
 * RUNNING, PAID and CANCELLED are the workflow's own answers; FAILED means the
 * execution ended without one (failed, terminated, timed out or cancelled in
 * Temporal), which needs an operator: `execution.status` says which.
 */
export type CheckoutApiStatus = CheckoutStatus | 'FAILED';

export interface CheckoutSummaryView {
  checkoutId: string;
  orderId: string;
  status: CheckoutApiStatus;
  statusUrl: string;
  webUiUrl: string | null;
}

export interface CheckoutView extends CheckoutSummaryView {
  execution: {
    status: WorkflowExecutionStatusName;
    runId: string;
    startedAt: string;
    closedAt: string | null;
  };
  /** Live state from the `state` query while RUNNING; null once closed or if no worker answered. */
  state: CheckoutState | null;
  /** Why `state` is null although the checkout is RUNNING. */
  stateUnavailable?: string;
  /** The workflow's result once it COMPLETED (status PAID or CANCELLED). */
  result: CheckoutResult | null;
}

export interface ViewContext {
  client: Client;
  namespace: string;
  temporalUiUrl: string | undefined;
  stateQueryTimeoutMs: number;
}

/**
 * The idempotency key behind a checkout id, or null if `checkoutId` is not one.
 * GET and cancel take the checkout id (= workflow id) the POST returned, never the bare key.
 */
export function checkoutKeyOf(checkoutId: string): string | null {
  const prefix = checkoutWorkflowId('');
  if (!checkoutId.startsWith(prefix)) return null;
  const key = checkoutId.slice(prefix.length);
  return key !== '' && checkoutWorkflowId(key) === checkoutId ? key : null;
}

export function statusUrl(checkoutId: string): string {
  return `/checkouts/${encodeURIComponent(checkoutId)}`;
}

export async function summaryView(ctx: ViewContext, description: WorkflowExecutionDescription): Promise<CheckoutSummaryView> {
  const result = description.status.name === 'COMPLETED' ? await resultOf(ctx, description.workflowId) : null;
  return summaryOf(ctx, description, result);
}

export async function fullView(ctx: ViewContext, description: WorkflowExecutionDescription): Promise<CheckoutView> {
  const running = description.status.name === 'RUNNING';
  const result = description.status.name === 'COMPLETED' ? await resultOf(ctx, description.workflowId) : null;
  const live = running ? await liveState(ctx, description.workflowId) : { state: null };
  return {
    ...summaryOf(ctx, description, result),
    execution: {
      status: description.status.name,
      runId: description.runId,
      startedAt: description.startTime.toISOString(),
      closedAt: description.closeTime?.toISOString() ?? null,
    },
    ...live,
    result,
  };
}

function summaryOf(
  ctx: ViewContext,
  description: WorkflowExecutionDescription,
  result: CheckoutResult | null,
): CheckoutSummaryView {
  const checkoutId = description.workflowId;
  return {
    checkoutId,
    orderId: orderIdFor(checkoutKeyOf(checkoutId) ?? checkoutId),
    status: apiStatus(description.status.name, result),
    statusUrl: statusUrl(checkoutId),
    webUiUrl: webUiUrl(ctx.temporalUiUrl, ctx.namespace, checkoutId, description.runId),
  };
}

function apiStatus(execution: WorkflowExecutionStatusName, result: CheckoutResult | null): CheckoutApiStatus {
  if (execution === 'RUNNING') return 'RUNNING';
  if (execution === 'COMPLETED' && result) return result.status;
  return 'FAILED';
}

async function resultOf(ctx: ViewContext, workflowId: string): Promise<CheckoutResult> {
  return ctx.client.workflow.getHandle<CheckoutWorkflow>(workflowId).result();
}

/**
 * The `state` query is answered by a worker, so it gets its own shorter deadline:
 * with no worker polling, Temporal holds the query until the deadline.
 */
async function liveState(
  ctx: ViewContext,
  workflowId: string,
): Promise<{ state: CheckoutState | null; stateUnavailable?: string }> {
  const handle = ctx.client.workflow.getHandle<CheckoutWorkflow>(workflowId);
  const state = await queryWithin(ctx.client, ctx.stateQueryTimeoutMs, () => handle.query(checkoutStateQuery));
  if (state !== null) return { state };
  return { state: null, stateUnavailable: `no checkout worker answered the state query within ${ctx.stateQueryTimeoutMs} ms` };
}
