// POST /checkouts starts (or finds) the checkout workflow for an idempotency key;
// GET /checkouts/:id reports it; POST /checkouts/:id/cancel signals it.
// :id is the checkoutId the POST returned (the workflow id, `checkout-<key>`).
import { Router, type Request } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { z } from 'zod';
import { conflict, HttpError, invalidRequest, notFound, parseBody } from '../../lib/http-errors.ts';
import { cancelCheckoutSignal, checkoutStartAttributes, checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import {
  checkoutDetails,
  checkoutRequestSchema,
  checkoutSummary,
  idempotencyKeyProblem,
  requestFingerprint,
  toCheckoutInput,
} from '../checkout-request.ts';
import {
  checkoutKeyOf,
  fullView,
  statusUrl,
  summaryView,
  type CheckoutWorkflow,
  type ViewContext,
} from '../checkout-view.ts';
import { callTemporal, describeWorkflowOfType } from '../temporal.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';

/** Memo field holding the sha256 of the request that started the checkout. */
export const REQUEST_FINGERPRINT_MEMO = 'requestSha256';

export interface CheckoutRoutesDeps {
  client: Client;
  namespace: string;
  taskQueue: string;
  temporalUiUrl: string | undefined;
  /** Deadline for all Temporal calls of one request. */
  temporalTimeoutMs: number;
  /** Deadline for the `state` query (answered by a worker). */
  stateQueryTimeoutMs: number;
}

const cancelRequestSchema = z.object({
  reason: z.string().trim().min(1).max(500).optional(),
});

const DEFAULT_CANCEL_REASON = 'cancelled by the customer';

export function checkoutRoutes(deps: CheckoutRoutesDeps): Router {
  const { client } = deps;
  const view: ViewContext = {
    client,
    namespace: deps.namespace,
    temporalUiUrl: deps.temporalUiUrl,
    stateQueryTimeoutMs: deps.stateQueryTimeoutMs,
  };
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const router = Router();

  router.post('/checkouts', async (req, res) => {
    const key = idempotencyKeyOf(req);
    const request = parseBody(checkoutRequestSchema, req.body);
    const workflowId = checkoutWorkflowId(key);
    const fingerprint = requestFingerprint(request);
    const input = toCheckoutInput(key, request);

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
          staticSummary: checkoutSummary(orderIdFor(key), request),
          staticDetails: checkoutDetails(request),
          typedSearchAttributes: checkoutStartAttributes(input),
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      // Whether we started it or found it, the memo tells whose request it runs.
      const description = await describeCheckout(client, workflowId);
      if (!description || description.memo?.[REQUEST_FINGERPRINT_MEMO] !== fingerprint) {
        throw new HttpError(
          422,
          'idempotency_key_reused',
          `Idempotency-Key "${key}" was already used for a different checkout request`,
        );
      }
      return summaryView(view, description);
    });

    res.status(202).location(checkout.statusUrl).json(checkout);
  });

  router.get('/checkouts/:id', async (req, res) => {
    const checkoutId = req.params.id;
    const checkout = await temporal(async () => fullView(view, await requireCheckout(client, checkoutId)));
    res.json(checkout);
  });

  router.post('/checkouts/:id/cancel', async (req, res) => {
    const checkoutId = req.params.id;
    const { reason = DEFAULT_CANCEL_REASON } = parseBody(cancelRequestSchema, req.body);
    await temporal(async () => {
      const description = await requireCheckout(client, checkoutId);
      if (description.status.name !== 'RUNNING') throw alreadyCompleted(checkoutId, description);
      try {
        await client.workflow.getHandle(checkoutId).signal(cancelCheckoutSignal, { reason });
      } catch (err) {
        // it closed between describe and signal
        if (err instanceof WorkflowNotFoundError) throw alreadyCompleted(checkoutId, await requireCheckout(client, checkoutId));
        throw err;
      }
    });
    res.status(202).json({
      checkoutId,
      cancelRequested: true,
      reason,
      statusUrl: statusUrl(checkoutId),
    });
  });

  return router;
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

async function requireCheckout(client: Client, checkoutId: string): Promise<WorkflowExecutionDescription> {
  const description = checkoutKeyOf(checkoutId) === null ? null : await describeCheckout(client, checkoutId);
  if (!description) throw notFound(`no checkout with id "${checkoutId}"`);
  return description;
}

function alreadyCompleted(checkoutId: string, description: WorkflowExecutionDescription): HttpError {
  return conflict('already_completed', `checkout "${checkoutId}" has already finished; it can no longer be cancelled`, {
    executionStatus: description.status.name,
  });
}
