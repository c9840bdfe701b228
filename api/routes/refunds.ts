// POST /refunds starts (or finds) the Refund workflow for a request id, requested by the token's
// subject; GET /refunds/:id reports it; POST /refunds/:id/<action> passes an operator's decision
// to it as a Temporal Update, which the run accepts (200, its new state) or refuses with its own
// reason (409: four_eyes, not_waiting_for_action, ...), atomically. :id is the refundId the POST
// returned (the workflow id, `refund-<requestId>`). A customer who may read only their own
// refunds gets 404 for anyone else's, exactly as for an id that does not exist.
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { z } from 'zod';
import { HttpError, notFound } from '../../lib/http-errors.ts';
import { REQUEST_FINGERPRINT_MEMO, requestFingerprint } from '../../lib/request-fingerprint.ts';
import { checkoutWorkflowIdForOrder } from '../../shared/checkout.ts';
import type { Permission, Principal } from '../../shared/permissions.ts';
import {
  abandonRefundUpdate,
  approveRefundUpdate,
  isReservedRefundRequestId,
  refundIdFor,
  refundManuallyUpdate,
  refundRequestIdFromRefundId,
  refundStateQuery,
  rejectRefundUpdate,
  retryRefundUpdate,
  refundStartAttributes,
  refundSummary,
  type RefundInput,
  type RefundOrigin,
  type RefundPolicy,
  type RefundState,
  type RefundStatus,
} from '../../shared/refunds.ts';
import { MAX_CHECKOUT_LINES, MAX_LINE_QUANTITY, MAX_ORDER_TOTAL_MINOR } from '../../shared/limits.ts';
import { CustomerIdKey, CurrencyKey, RegionKey } from '../../shared/search-attributes.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import { hasPermission } from '../auth.ts';
import { performOperatorAction, type AuditLog } from '../operator-action.ts';
import type { RouteDeclarer } from '../route.ts';
import { callTemporal, describeWorkflowOfType, queryWithin, webUiUrl } from '../temporal.ts';

type RefundWorkflow = (input: RefundInput) => Promise<RefundState>;

export interface RefundRoutesDeps {
  client: Client;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string | undefined;
  temporalTimeoutMs: number;
  stateQueryTimeoutMs: number;
  /** Overrides of the workflow's default policy (approval threshold, escalation, expiry); omit for the defaults. */
  policy?: Partial<RefundPolicy>;
  /** Where operator decisions are recorded (who, which refund, accepted or refused). */
  audit: AuditLog;
  /** The key of the request fingerprint kept in each refund's memo (REQUEST_FINGERPRINT_SECRET). */
  fingerprintSecret: string;
}

const id = z.string().trim().min(1).max(200);
const refundRequestSchema = z.object({
  /** The caller's idempotency key: the same requestId always names the same refund. */
  requestId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1 to 100 characters from A-Z a-z 0-9 . _ : -')
    // the ids the system gives its own refunds (a cancelled checkout's, a reconciliation fix)
    .refine((requestId) => !isReservedRefundRequestId(requestId), 'is reserved for refunds the system starts itself'),
  orderId: id,
  amount: z.union([z.literal('full'), z.number().int().min(1).max(MAX_ORDER_TOTAL_MINOR)]),
  reason: z.string().trim().min(1).max(500),
  restock: z
    .array(z.object({ sku: z.string().min(1).max(64), quantity: z.number().int().min(1).max(MAX_LINE_QUANTITY) }))
    .max(MAX_CHECKOUT_LINES)
    .default([])
    .superRefine((lines, ctx) => {
      const seen = new Set<string>();
      lines.forEach((line, i) => {
        if (seen.has(line.sku)) ctx.addIssue({ code: 'custom', message: `duplicate SKU "${line.sku}"`, path: [i, 'sku'] });
        seen.add(line.sku);
      });
    }),
  // no `requestedBy`: who asked is the token's subject
});
type RefundRequest = z.infer<typeof refundRequestSchema> & { requestedBy: string };

/** Temporal's own limit on a workflow id's length; anything else unknown is a 404. */
const refundParams = z.object({ id: z.string().min(1).max(1_000) });

// no `by`: the acting person is the token's subject
const decisionSchema = z.object({ reason: z.string().trim().min(1).max(2000) });
const manualSchema = decisionSchema.extend({ reference: z.string().trim().min(1).max(200) });

const refundView = z.object({
  refundId: z.string(),
  requestId: z.string().nullable(),
  status: z.string().describe('the workflow\'s own status (VALIDATING, AWAITING_APPROVAL, ...), RUNNING before a worker answered, FAILED when it ended without a result'),
  statusUrl: z.string(),
  webUiUrl: z.string().nullable(),
  execution: z.object({ status: z.string(), runId: z.string(), startedAt: z.string(), closedAt: z.string().nullable() }),
  /** RefundState (shared/refunds.ts), or null. */
  state: z.unknown(),
  stateUnavailable: z.string().optional(),
});

const actionAnswer = z.object({
  refundId: z.string(),
  action: z.string(),
  by: z.string(),
  reason: z.string(),
  reference: z.string().optional(),
  /** The refund's state right after it accepted the action (RefundState, shared/refunds.ts). */
  state: z.unknown(),
  statusUrl: z.string(),
});

/** The API status: the workflow's own, or FAILED when the execution ended without an answer. */
export type RefundApiStatus = RefundStatus | 'FAILED';

export function refundRoutes(route: RouteDeclarer, deps: RefundRoutesDeps): void {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);

  route(
    {
      method: 'post',
      path: '/refunds',
      summary: 'Request a refund of an order (or find the one this requestId names); the signed-in person is its requester',
      tag: 'refunds',
      permissions: ['refunds:request'],
      body: refundRequestSchema,
      responses: { 202: { description: 'Started, or found: the same requestId always names the same refund', schema: refundView } },
    },
    async ({ res, principal, body }) => {
      const request: RefundRequest = { ...body, requestedBy: principal!.subject };
      const refundId = refundIdFor(request.requestId);
      const fingerprint = fingerprintOf(deps.fingerprintSecret, request);
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
        return await viewOf(deps, description, { live: false });
      });
      res.status(202).location(view.statusUrl).json(view);
    },
  );

  route(
    {
      method: 'get',
      path: '/refunds/:id',
      summary: "A refund: its live state while it runs, its result once done (a customer sees only their own orders' refunds)",
      tag: 'refunds',
      permissions: ['refunds:read', 'refunds:read:own'],
      params: refundParams,
      query: z.object({}),
      responses: { 200: { description: 'The refund', schema: refundView } },
    },
    async ({ res, principal, params: { id } }) => {
      res.json(await temporal(async () => viewOf(deps, await requireVisibleRefund(client, id, principal!, 'refunds:read'))));
    },
  );

  /** POST /refunds/:id/<path>: `update` under the caller's identity, `by` = the token's subject. */
  const action = <B extends z.ZodObject>(
    path: string,
    permission: Permission,
    body: B,
    update: UpdateDefinition<RefundState, [z.output<B> & { by: string }]>,
    summary: string,
  ) =>
    route(
      {
        method: 'post',
        path: `/refunds/:id/${path}`,
        summary,
        tag: 'refunds',
        permissions: [permission],
        params: refundParams,
        body,
        responses: { 200: { description: 'The refund accepted the action', schema: actionAnswer } },
      },
      async ({ res, principal, params: { id: refundId }, body: decision }) => {
        const caller = principal!;
        // An unknown id is a 404, not a refusal: a refund's type and id never change, so this races with nothing.
        await temporal(() => requireVisibleRefund(client, refundId, caller, permission));
        const arg = { ...(decision as z.output<B>), by: caller.subject };
        const state = await performOperatorAction(
          { client, audit: deps.audit, temporalTimeoutMs: deps.temporalTimeoutMs },
          { principal: caller, action: `refund.${path}`, workflowId: refundId, update, arg },
        );
        res.json({ refundId, action: path, ...arg, state, statusUrl: statusUrl(refundId) });
      },
    );

  action('approve', 'refunds:decide', decisionSchema, approveRefundUpdate, 'Approve a refund waiting for approval (never one you requested yourself)');
  action('reject', 'refunds:decide', decisionSchema, rejectRefundUpdate, 'Reject a refund waiting for approval');
  action('retry', 'refunds:intervene', decisionSchema, retryRefundUpdate, 'Ask the provider again after it refused the refund');
  action('refund-manually', 'refunds:intervene', manualSchema, refundManuallyUpdate, 'Record that the money went back outside the provider, with its reference');
  action('abandon', 'refunds:intervene', decisionSchema, abandonRefundUpdate, 'Give up a refund the provider refused, with the reason on record');
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

/** The validated request's fingerprint, restock lines sorted by SKU: their order does not make another request. */
function fingerprintOf(secret: string, request: RefundRequest): string {
  const restock = [...request.restock].sort((a, b) => (a.sku < b.sku ? -1 : 1)).map(({ sku, quantity }) => ({ sku, quantity }));
  return requestFingerprint(secret, { ...request, restock });
}

/** The refund as GET /refunds/:id shows it: the live `state` query while it runs (unless `live` is false), the result once done. */
async function viewOf(deps: RefundRoutesDeps, description: WorkflowExecutionDescription, { live: withLiveState = true } = {}) {
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

/**
 * The refund if `principal` may see it: with `anyRefund` any refund, else only one whose
 * CustomerId (inherited from the order's checkout) is the token's subject.
 */
async function requireVisibleRefund(
  client: Client,
  refundId: string,
  principal: Principal,
  anyRefund: Permission,
): Promise<WorkflowExecutionDescription> {
  const description = refundRequestIdFromRefundId(refundId) ? await describeRefund(client, refundId) : null;
  const visible =
    description !== null &&
    (hasPermission(principal, anyRefund) || description.typedSearchAttributes.get(CustomerIdKey) === principal.subject);
  if (!visible) throw notFound(`no refund with id "${refundId}"`);
  return description;
}
