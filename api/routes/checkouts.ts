// POST /checkouts starts (or finds) the checkout workflow for an idempotency key, for the
// signed-in customer only; GET /checkouts/:id reports it; POST /checkouts/:id/cancel asks it to
// cancel (a Temporal Update the run accepts or refuses). :id is the checkoutId the POST returned
// (the workflow id, `checkout-<key>`). A caller who may only see their own checkouts gets 404 for
// anyone else's, exactly as for an id that does not exist.
import type { Request } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { z } from 'zod';
import { HttpError, invalidRequest, notFound } from '../../lib/http-errors.ts';
import { REQUEST_FINGERPRINT_MEMO, requestFingerprint } from '../../lib/request-fingerprint.ts';
import { cancelCheckoutUpdate, checkoutStartAttributes, checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import type { Permission, Principal } from '../../shared/permissions.ts';
import { hasPermission } from '../auth.ts';
import {
  checkoutDetails,
  checkoutRequestSchema,
  checkoutSummary,
  idempotencyKeyProblem,
  idempotencyKeyReused,
  toCheckoutInput,
} from '../checkout-request.ts';
import {
  checkoutKeyOf,
  checkoutSummaryViewSchema,
  checkoutViewSchema,
  customerOf,
  fullView,
  statusUrl,
  summaryView,
  type CheckoutWorkflow,
  type ViewContext,
} from '../checkout-view.ts';
import { performOperatorAction, type AuditLog } from '../operator-action.ts';
import { resolvePaymentMethod, type PaymentMethodClient } from '../payment-methods.ts';
import type { RouteDeclarer } from '../route.ts';
import { callTemporal, describeWorkflowOfType } from '../temporal.ts';
import { priceFromCatalogue, type CatalogueClient } from '../catalogue.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';

export interface CheckoutRoutesDeps {
  client: Client;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string | undefined;
  /** Deadline for all Temporal calls of one request. */
  temporalTimeoutMs: number;
  /** Deadline for the `state` query (answered by a worker). */
  stateQueryTimeoutMs: number;
  /** The inventory service's catalogue: every checkout is priced and checked against it before it starts. */
  catalogue: CatalogueClient;
  /** The payment provider's vault: a card number is exchanged for its token before a checkout starts. */
  paymentMethods: PaymentMethodClient;
  /** The key of the request fingerprint kept in each checkout's memo (REQUEST_FINGERPRINT_SECRET). */
  fingerprintSecret: string;
  /** Where cancels are recorded (who, which checkout, accepted or refused). */
  audit: AuditLog;
}

/** Temporal's own limit on a workflow id's length; anything else unknown is a 404. */
const checkoutParams = z.object({ id: z.string().min(1).max(1_000) });

// no `by`: the acting person is the token's subject
const cancelRequestSchema = z.object({
  reason: z.string().trim().min(1).max(500).optional(),
});

const idempotencyKeyHeader = {
  description: 'Names the checkout: 1 to 100 characters from A-Z a-z 0-9 . _ : -; repeating the POST with it returns the same checkout',
  required: true,
  schema: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/),
};

const cancelAnswer = z.object({
  checkoutId: z.string(),
  action: z.literal('cancel'),
  reason: z.string(),
  by: z.string(),
  /** The checkout's state right after it accepted the cancel (CheckoutState, shared/checkout.ts). */
  state: z.unknown(),
  statusUrl: z.string(),
});

const DEFAULT_CANCEL_REASON = 'cancelled by the customer';

export function checkoutRoutes(route: RouteDeclarer, deps: CheckoutRoutesDeps): void {
  const { client } = deps;
  const view: ViewContext = {
    client,
    namespace: deps.namespace,
    temporalUiUrl: deps.temporalUiUrl,
    stateQueryTimeoutMs: deps.stateQueryTimeoutMs,
  };
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);

  route(
    {
      method: 'post',
      path: '/checkouts',
      summary: 'Start (or find) the checkout named by the Idempotency-Key, as the signed-in customer, at catalogue prices',
      tag: 'checkouts',
      permissions: ['checkouts:create'],
      headers: { 'Idempotency-Key': idempotencyKeyHeader },
      body: checkoutRequestSchema,
      responses: { 202: { description: 'Started, or found: the same key always names the same checkout', schema: checkoutSummaryViewSchema } },
    },
    async ({ req, res, principal, body: request }) => {
      const key = idempotencyKeyOf(req);
      requireSelf(principal!, request.customerId);
      const workflowId = checkoutWorkflowId(key);
      // Over the body as sent (not the catalogue's prices), so the same request keeps its fingerprint.
      const fingerprint = requestFingerprint(deps.fingerprintSecret, request);
      // Refused here (400/409/422/503) means no run is started and nothing of ours is written or
      // reserved; the card is tokenised last, so a request the catalogue refuses never reaches the provider.
      const priced = await priceFromCatalogue(request, deps.catalogue);
      const paymentMethod = await resolvePaymentMethod(deps.paymentMethods, key, request.paymentMethod);
      const input = toCheckoutInput(key, request, priced, paymentMethod);

      const checkout = await temporal(async () => {
        try {
          await client.workflow.start<CheckoutWorkflow>(WORKFLOW_TYPES.checkout, {
            workflowId,
            taskQueue: deps.taskQueue,
            args: [input],
            // A key names one checkout forever: a repeat joins the running one, and
            // after it closed (whatever the outcome) it is reported, never restarted.
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            memo: { [REQUEST_FINGERPRINT_MEMO]: fingerprint },
            staticSummary: checkoutSummary(orderIdFor(key), request, priced),
            staticDetails: checkoutDetails(request, priced),
            typedSearchAttributes: checkoutStartAttributes(input),
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
        // Whether we started it or found it, the memo tells whose request it runs.
        const description = await describeCheckout(client, workflowId);
        if (!description || description.memo?.[REQUEST_FINGERPRINT_MEMO] !== fingerprint) throw idempotencyKeyReused(key);
        return summaryView(view, description);
      });

      res.status(202).location(checkout.statusUrl).json(checkout);
    },
  );

  route(
    {
      method: 'get',
      path: '/checkouts/:id',
      summary: "A checkout: its live state while it runs, its result once done (a customer sees only their own)",
      tag: 'checkouts',
      permissions: ['checkouts:read', 'checkouts:read:own'],
      params: checkoutParams,
      query: z.object({}),
      responses: { 200: { description: 'The checkout', schema: checkoutViewSchema } },
    },
    async ({ res, principal, params: { id } }) => {
      const checkout = await temporal(async () => fullView(view, await requireVisibleCheckout(client, id, principal!, 'checkouts:read')));
      res.json(checkout);
    },
  );

  route(
    {
      method: 'post',
      path: '/checkouts/:id/cancel',
      summary: "Cancel a checkout before its payment is captured; the run accepts (200, its new state) or refuses (409, its reason)",
      tag: 'checkouts',
      permissions: ['checkouts:cancel', 'checkouts:cancel:own'],
      params: checkoutParams,
      body: cancelRequestSchema,
      responses: { 200: { description: 'The checkout accepted the cancel and is compensating', schema: cancelAnswer } },
    },
    async ({ res, principal, params: { id: checkoutId }, body }) => {
      const caller = principal!;
      // Whose it is never changes, so checking it before the update races with nothing.
      await temporal(() => requireVisibleCheckout(client, checkoutId, caller, 'checkouts:cancel'));
      const arg = { reason: body.reason ?? DEFAULT_CANCEL_REASON, by: caller.subject };
      const state = await performOperatorAction(
        { client, audit: deps.audit, temporalTimeoutMs: deps.temporalTimeoutMs },
        { principal: caller, action: 'checkout.cancel', workflowId: checkoutId, update: cancelCheckoutUpdate, arg },
      );
      res.json({ checkoutId, action: 'cancel', ...arg, state, statusUrl: statusUrl(checkoutId) });
    },
  );
}

function idempotencyKeyOf(req: Request): string {
  const key = req.get('Idempotency-Key');
  const problem = idempotencyKeyProblem(key);
  if (problem !== null || key === undefined) throw invalidRequest(problem ?? 'Idempotency-Key is invalid', 'Idempotency-Key');
  return key;
}

/** The checkout's execution, or null if no checkout workflow has this id. */
function describeCheckout(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | null> {
  return describeWorkflowOfType(client, workflowId, WORKFLOW_TYPES.checkout);
}

/**
 * The checkout if `principal` may see it: with `anyCheckout` any checkout, else only one whose
 * CustomerId is the token's subject. Another customer's checkout answers exactly as an unknown id.
 */
async function requireVisibleCheckout(
  client: Client,
  checkoutId: string,
  principal: Principal,
  anyCheckout: Permission,
): Promise<WorkflowExecutionDescription> {
  const description = checkoutKeyOf(checkoutId) === null ? null : await describeCheckout(client, checkoutId);
  const visible = description !== null && (hasPermission(principal, anyCheckout) || customerOf(description) === principal.subject);
  if (!visible) throw notFound(`no checkout with id "${checkoutId}"`);
  return description;
}

/** A customer starts checkouts only as themself: the body's customerId must be the token's subject. */
function requireSelf(principal: Principal, customerId: string): void {
  if (customerId !== principal.subject) {
    throw new HttpError(403, 'forbidden', 'customerId must be the signed-in customer: a checkout can only be started for oneself', {
      field: 'customerId',
    });
  }
}
