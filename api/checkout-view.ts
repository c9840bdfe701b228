// What GET /checkouts/:id answers, assembled from Temporal: describe() for the
// execution, the `state` query while it runs, the workflow result once it is done.
import type { Client, WorkflowExecutionDescription, WorkflowExecutionStatusName } from '@temporalio/client';
import { z } from 'zod';
import {
  checkoutStateQuery,
  checkoutWorkflowId,
  orderIdFor,
  type CheckoutInput,
  type CheckoutResult,
  type CheckoutState,
  type CheckoutStatus,
} from '../shared/checkout.ts';
import { CustomerIdKey } from '../shared/search-attributes.ts';
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

// The views' shapes for the OpenAPI document; the checks below keep them equal to the types.
const executionStatus = z.enum(['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'CONTINUED_AS_NEW', 'TIMED_OUT', 'PAUSED', 'UNKNOWN', 'UNSPECIFIED']);
export const checkoutSummaryViewSchema = z.object({
  checkoutId: z.string(),
  orderId: z.string(),
  status: z.enum(['RUNNING', 'PAID', 'CANCELLED', 'FAILED']),
  statusUrl: z.string(),
  webUiUrl: z.string().nullable(),
});
export const checkoutViewSchema = checkoutSummaryViewSchema.extend({
  execution: z.object({ status: executionStatus, runId: z.string(), startedAt: z.string(), closedAt: z.string().nullable() }),
  /** CheckoutState (shared/checkout.ts) while running and a worker answered, else null. */
  state: z.unknown(),
  stateUnavailable: z.string().optional(),
  /** CheckoutResult once completed, else null. */
  result: z.unknown(),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _summaryMatches: Same<z.output<typeof checkoutSummaryViewSchema>, CheckoutSummaryView> = true;
void _summaryMatches;

/** The customer a checkout belongs to (its CustomerId search attribute), set when it started. */
export function customerOf(description: WorkflowExecutionDescription): string | undefined {
  return description.typedSearchAttributes.get(CustomerIdKey);
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
