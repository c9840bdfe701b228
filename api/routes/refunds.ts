// POST /refunds starts (or finds) the Refund workflow for a request id; GET /refunds/:id reports
// it; POST /refunds/:id/<action> passes an operator's decision to it as a signal. :id is the
// refundId the POST returned (the workflow id, `refund-<requestId>`). An action the refund is not
// waiting for is refused here with 409, so an operator learns it at once instead of the
// workflow quietly ignoring it.
import { createHash } from 'node:crypto';
import { Router } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { z } from 'zod';
import { conflict, HttpError, notFound, parseBody } from '../../lib/http-errors.ts';
import { checkoutWorkflowIdForOrder } from '../../shared/checkout.ts';
import {
  abandonRefundSignal,
  approveRefundSignal,
  refundIdFor,
  refundManuallySignal,
  refundRequestIdFromRefundId,
  refundStateQuery,
  rejectRefundSignal,
  retryRefundSignal,
  refundStartAttributes,
  refundSummary,
  type RefundInput,
  type RefundOrigin,
  type RefundPolicy,
  type RefundState,
  type RefundStatus,
} from '../../shared/refunds.ts';
import { CustomerIdKey, CurrencyKey, RegionKey } from '../../shared/search-attributes.ts';
import { callTemporal, describeWorkflowOfType, queryWithin, webUiUrl } from '../temporal.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';

type RefundWorkflow = (input: RefundInput) => Promise<RefundState>;

/** Memo field holding the sha256 of the request that started the refund. */
const REQUEST_FINGERPRINT_MEMO = 'requestSha256';

export interface RefundRoutesDeps {
  client: Client;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string | undefined;
  temporalTimeoutMs: number;
  stateQueryTimeoutMs: number;
  /** Overrides of the workflow's default policy (approval threshold, escalation, expiry); omit for the defaults. */
  policy?: Partial<RefundPolicy>;
}

const id = z.string().trim().min(1).max(200);
const refundRequestSchema = z.object({
  /** The caller's idempotency key: the same requestId always names the same refund. */
  requestId: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1 to 100 characters from A-Z a-z 0-9 . _ : -'),
  orderId: id,
  amount: z.union([z.literal('full'), z.number().int().min(1).max(1_000_000_000)]),
  reason: z.string().trim().min(1).max(500),
  restock: z
    .array(z.object({ sku: z.string().min(1).max(64), quantity: z.number().int().min(1).max(10_000) }))
    .max(50)
    .default([])
    .superRefine((lines, ctx) => {
      const seen = new Set<string>();
      lines.forEach((line, i) => {
        if (seen.has(line.sku)) ctx.addIssue({ code: 'custom', message: `duplicate SKU "${line.sku}"`, path: [i, 'sku'] });
        seen.add(line.sku);
      });
    }),
  requestedBy: z.string().trim().min(1).max(200).default('api'),
});
type RefundRequest = z.infer<typeof refundRequestSchema>;

const decisionSchema = z.object({ by: z.string().trim().min(1).max(200), reason: z.string().trim().min(1).max(2000) });
const manualSchema = decisionSchema.extend({ reference: z.string().trim().min(1).max(200) });

/** The API status: the workflow's own, or FAILED when the execution ended without an answer. */
export type RefundApiStatus = RefundStatus | 'FAILED';

const APPROVAL_STATES: readonly RefundStatus[] = ['AWAITING_APPROVAL', 'ESCALATED'];
const OPERATOR_STATES: readonly RefundStatus[] = ['NEEDS_OPERATOR'];

export function refundRoutes(deps: RefundRoutesDeps): Router {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const router = Router();

  router.post('/refunds', async (req, res) => {
    const request = parseBody(refundRequestSchema, req.body);
    const refundId = refundIdFor(request.requestId);
    const fingerprint = fingerprintOf(request);
    const view = await temporal(async () => {
      const origin = await orderOrigin(client, request.orderId);
      try {
        await client.workflow.start<RefundWorkflow>(WORKFLOW_TYPES.refund, {
          workflowId: refundId,
          taskQueue: deps.taskQueue,
          args: [toRefundInput(request, deps.policy)],
          // A request id names one refund forever: a repeat joins it, or reports it once closed.
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          memo: { [REQUEST_FINGERPRINT_MEMO]: fingerprint },
          staticSummary: refundSummary(request, origin.currency),
          typedSearchAttributes: refundStartAttributes(request, origin),
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      const description = await describeRefund(client, refundId);
      if (!description || description.memo?.[REQUEST_FINGERPRINT_MEMO] !== fingerprint) {
        throw new HttpError(422, 'idempotency_key_reused', `requestId "${request.requestId}" was already used for a different refund request`);
      }
      // No state query here: a worker may not have picked the refund up yet, and the answer should not wait for one.
      return await refundView(deps, description, { live: false });
    });
    res.status(202).location(view.statusUrl).json(view);
  });

  router.get('/refunds/:id', async (req, res) => {
    res.json(await temporal(async () => refundView(deps, await requireRefund(client, req.params.id))));
  });

  /** Sends `signal` if the refund is in one of `waitingIn`; else 409 naming where it stands. */
  const action = <A>(
    path: string,
    schema: z.ZodType<A>,
    waitingIn: readonly RefundStatus[],
    send: (handle: ReturnType<Client['workflow']['getHandle']>, args: A) => Promise<void>,
  ) =>
    router.post(`/refunds/:id/${path}`, async (req, res) => {
      const refundId = req.params.id as string;
      const args = parseBody(schema, req.body);
      await temporal(async () => {
        const description = await requireRefund(client, refundId);
        if (description.status.name !== 'RUNNING') {
          throw conflict('already_completed', `refund "${refundId}" has already finished`, { executionStatus: description.status.name });
        }
        const { state, stateUnavailable } = await liveState(deps, refundId);
        if (state === null) throw new HttpError(503, 'refund_state_unavailable', stateUnavailable ?? 'no worker answered');
        if (!waitingIn.includes(state.status)) {
          throw conflict('not_waiting_for_action', `refund "${refundId}" is ${state.status}; "${path}" applies only while ${waitingIn.join(' or ')}`, {
            status: state.status,
          });
        }
        try {
          await send(client.workflow.getHandle(refundId), args);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) throw conflict('already_completed', `refund "${refundId}" has already finished`);
          throw err;
        }
      });
      res.status(202).json({ refundId, action: path, ...args, statusUrl: statusUrl(refundId) });
    });

  action('approve', decisionSchema, APPROVAL_STATES, (h, d) => h.signal(approveRefundSignal, d));
  action('reject', decisionSchema, APPROVAL_STATES, (h, d) => h.signal(rejectRefundSignal, d));
  action('retry', decisionSchema, OPERATOR_STATES, (h, d) => h.signal(retryRefundSignal, d));
  action('refund-manually', manualSchema, OPERATOR_STATES, (h, d) => h.signal(refundManuallySignal, d));
  action('abandon', decisionSchema, OPERATOR_STATES, (h, d) => h.signal(abandonRefundSignal, d));

  return router;
}

export function statusUrl(refundId: string): string {
  return `/refunds/${encodeURIComponent(refundId)}`;
}

function toRefundInput(request: RefundRequest, policy: Partial<RefundPolicy> | undefined): RefundInput {
  return {
    requestId: request.requestId,
    orderId: request.orderId,
    amount: request.amount,
    reason: request.reason,
    restock: request.restock.map(({ sku, quantity }) => ({ sku, quantity })),
    requestedBy: request.requestedBy,
    ...(policy ? { policy } : {}),
  };
}

/** sha256 of the validated request, fields in a fixed order, lines sorted by SKU. */
function fingerprintOf(request: RefundRequest): string {
  const canonical = [
    request.requestId,
    request.orderId,
    request.amount,
    request.reason,
    [...request.restock].sort((a, b) => (a.sku < b.sku ? -1 : 1)).map((l) => [l.sku, l.quantity]),
    request.requestedBy,
  ];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** The refund as GET /refunds/:id shows it: the live `state` query while it runs (unless `live` is false), the result once done. */
async function refundView(deps: RefundRoutesDeps, description: WorkflowExecutionDescription, { live: withLiveState = true } = {}) {
  const refundId = description.workflowId;
  const execution = description.status.name;
  const result = execution === 'COMPLETED' ? await deps.client.workflow.getHandle<RefundWorkflow>(refundId).result() : null;
  const live: { state: RefundState | null; stateUnavailable?: string } =
    execution === 'RUNNING' && withLiveState ? await liveState(deps, refundId) : { state: null };
  const state = result ?? live.state;
  return {
    refundId,
    requestId: refundRequestIdFromRefundId(refundId),
    status: apiStatus(execution, state),
    statusUrl: statusUrl(refundId),
    webUiUrl: webUiUrl(deps.temporalUiUrl, deps.namespace, refundId, description.runId),
    execution: {
      status: execution,
      runId: description.runId,
      startedAt: description.startTime.toISOString(),
      closedAt: description.closeTime?.toISOString() ?? null,
    },
    state,
    ...(live.stateUnavailable ? { stateUnavailable: live.stateUnavailable } : {}),
  };
}

function apiStatus(execution: WorkflowExecutionStatusName, state: RefundState | null): RefundApiStatus | 'RUNNING' {
  if (execution === 'RUNNING') return state?.status ?? 'RUNNING';
  if (execution === 'COMPLETED' && state) return state.status;
  return 'FAILED';
}

/** The `state` query under its own short deadline: without a worker, Temporal holds it until then. */
async function liveState(deps: RefundRoutesDeps, refundId: string): Promise<{ state: RefundState | null; stateUnavailable?: string }> {
  const handle = deps.client.workflow.getHandle<RefundWorkflow>(refundId);
  const state = await queryWithin(deps.client, deps.stateQueryTimeoutMs, () => handle.query(refundStateQuery));
  return state !== null ? { state } : { state: null, stateUnavailable: `no worker answered the state query within ${deps.stateQueryTimeoutMs} ms` };
}

/**
 * What the refund inherits from the checkout that owns the order (its search attributes), so
 * operators can filter refunds by region and customer; nothing for an order no checkout owns.
 */
async function orderOrigin(client: Client, orderId: string): Promise<RefundOrigin> {
  const checkoutId = checkoutWorkflowIdForOrder(orderId);
  const checkout = checkoutId === null ? null : await describeWorkflowOfType(client, checkoutId, WORKFLOW_TYPES.checkout);
  if (checkout === null) return {};
  const attributes = checkout.typedSearchAttributes;
  return { region: attributes.get(RegionKey), customerId: attributes.get(CustomerIdKey), currency: attributes.get(CurrencyKey) };
}

function describeRefund(client: Client, refundId: string): Promise<WorkflowExecutionDescription | null> {
  return describeWorkflowOfType(client, refundId, WORKFLOW_TYPES.refund);
}

async function requireRefund(client: Client, refundId: string): Promise<WorkflowExecutionDescription> {
  const description = refundRequestIdFromRefundId(refundId) ? await describeRefund(client, refundId) : null;
  if (!description) throw notFound(`no refund with id "${refundId}"`);
  return description;
}
