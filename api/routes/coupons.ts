// Coupon issuance and campaign distribution. POST /coupons/issuances starts (or finds) the
// CouponIssuance workflow of a request id; GET /coupons/issuances/:requestId reports its result,
// which is the single source of truth (`?wait=true` waits up to 10 s for it). POST
// /campaigns/:id/distribute stores the recipients (idempotently) and starts the distribution;
// GET .../distributions/:distributionId reads its progress query (or its result); pause,
// resume and cancel are signals.
//
// Mounted before the API's 64 kB JSON parser: a distribution's recipient list is larger.
import express, { Router } from 'express';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { conflict, HttpError, notFound, parse, parseBody } from '../../lib/http-errors.ts';
import {
  cancelDistributionSignal,
  distributionProgressQuery,
  distributionStartAttributes,
  distributionSummary,
  distributionWorkflowId,
  issuanceStartAttributes,
  issuanceSummary,
  issuanceWorkflowId,
  pauseDistributionSignal,
  resumeDistributionSignal,
  type DistributionInput,
  type DistributionProgress,
  type IssuanceInput,
  type IssuanceResult,
} from '../../shared/coupons.ts';
import { customerIdSchema } from '../checkout-request.ts';
import { callTemporal, describeWorkflowOfType, isTimeout, queryWithin } from '../temporal.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';

/** The signatures of workflows/coupon-issuance.ts and workflows/coupon-distribution.ts, for typed starts. */
type IssuanceWorkflow = (input: IssuanceInput) => Promise<IssuanceResult>;
type DistributionWorkflow = (input: DistributionInput) => Promise<DistributionProgress>;

export const MAX_RECIPIENTS = 100_000;
/** How long `?wait=true` holds the answer for a running issuance. */
const RESULT_WAIT_MS = 10_000;
/** Rows per INSERT: three parameters each, well under PostgreSQL's 65,535. */
const RECIPIENT_INSERT_CHUNK = 10_000;

export interface CouponRoutesDeps {
  client: Client;
  /** Our own database: the distribution's recipients are stored there. Without it, distribution routes are absent. */
  db?: Db;
  taskQueue: string;
  temporalTimeoutMs: number;
  stateQueryTimeoutMs: number;
}

const key = z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1 to 100 characters from A-Z a-z 0-9 . _ : -');
const id = z.string().trim().min(1).max(200);
const issuanceSchema = z.object({ requestId: key, campaignId: id, customerId: customerIdSchema });
const distributeSchema = z.object({
  distributionId: key,
  customerIds: z
    .array(customerIdSchema)
    .min(1)
    .max(MAX_RECIPIENTS)
    .superRefine((ids, ctx) => {
      const seen = new Set<string>();
      ids.forEach((customerId, i) => {
        if (seen.has(customerId)) ctx.addIssue({ code: 'custom', message: `duplicate customer "${customerId}"`, path: [i] });
        seen.add(customerId);
      });
    }),
  batchSize: z.number().int().min(1).max(1_000).optional(),
  parallelBatches: z.number().int().min(1).max(10).optional(),
});
const cancelSchema = z.object({
  by: z.string().trim().min(1).max(200).default('api'),
  reason: z.string().trim().min(1).max(2000).default('cancelled through the API'),
});

const small = express.json({ limit: '64kb' });
const recipientList = express.json({ limit: '10mb' });

export function couponRoutes(deps: CouponRoutesDeps): Router {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const router = Router();

  router.post('/coupons/issuances', small, async (req, res) => {
    const input: IssuanceInput = parseBody(issuanceSchema, req.body);
    const workflowId = issuanceWorkflowId(input.requestId);
    const description = await temporal(async () => {
      await startOnce(client, WORKFLOW_TYPES.couponIssuance, {
        workflowId,
        taskQueue: deps.taskQueue,
        args: [input],
        memo: { campaignId: input.campaignId, customerId: input.customerId },
        staticSummary: issuanceSummary(input),
        typedSearchAttributes: issuanceStartAttributes(input),
      });
      return client.workflow.getHandle(workflowId).describe();
    });
    if (description.memo?.campaignId !== input.campaignId || description.memo?.customerId !== input.customerId) {
      throw new HttpError(422, 'idempotency_key_reused', `requestId "${input.requestId}" was already used for a different issuance`);
    }
    const view = await temporal(() => issuanceView(client, description));
    res.status(202).location(view.statusUrl).json(view);
  });

  router.get('/coupons/issuances/:requestId', async (req, res) => {
    const requestId = req.params.requestId;
    const description = await temporal(() => describeWorkflowOfType(client, issuanceWorkflowId(requestId), WORKFLOW_TYPES.couponIssuance));
    if (!description) throw notFound(`no issuance for requestId "${requestId}"`);
    if (description.status.name === 'RUNNING' && req.query.wait === 'true') {
      const handle = client.workflow.getHandle<IssuanceWorkflow>(description.workflowId);
      const deadline = Date.now() + RESULT_WAIT_MS;
      try {
        await client.connection.withDeadline(deadline, () => handle.result());
      } catch (err) {
        // still running at the deadline, or ended without a result: either way, described below
        if (!isTimeout(err, deadline) && !(err instanceof WorkflowFailedError)) throw err;
      }
      const closed = await temporal(() => handle.describe());
      res.json(await temporal(() => issuanceView(client, closed)));
      return;
    }
    res.json(await temporal(() => issuanceView(client, description)));
  });

  const { db } = deps;
  if (!db) return router;

  router.post('/campaigns/:campaignId/distribute', recipientList, async (req, res) => {
    const { campaignId } = parse(z.object({ campaignId: id }), req.params);
    const request = parseBody(distributeSchema, req.body);
    const { distributionId } = request;
    // Idempotent: a repeat (or a retry after a partial insert) adds only what is missing.
    for (let start = 0; start < request.customerIds.length; start += RECIPIENT_INSERT_CHUNK) {
      await db.distributionRecipient.createMany({
        data: request.customerIds
          .slice(start, start + RECIPIENT_INSERT_CHUNK)
          .map((customerId, i) => ({ distributionId, position: start + i, customerId })),
        skipDuplicates: true,
      });
    }
    const stored = await db.distributionRecipient.count({ where: { distributionId } });
    if (stored !== request.customerIds.length) {
      throw conflict('distribution_id_reused', `distributionId "${distributionId}" already names a distribution to ${stored} other recipients`);
    }
    const workflowId = distributionWorkflowId(distributionId);
    const description = await temporal(async () => {
      await startOnce(client, WORKFLOW_TYPES.couponDistribution, {
        workflowId,
        taskQueue: deps.taskQueue,
        args: [{ distributionId, campaignId, batchSize: request.batchSize, parallelBatches: request.parallelBatches }],
        memo: { campaignId },
        staticSummary: distributionSummary(campaignId, stored),
        typedSearchAttributes: distributionStartAttributes(),
      });
      return client.workflow.getHandle(workflowId).describe();
    });
    if (description.memo?.campaignId !== campaignId) {
      throw conflict('distribution_id_reused', `distributionId "${distributionId}" belongs to campaign "${String(description.memo?.campaignId)}"`);
    }
    const view = distributionView(description, null);
    res.status(202).location(view.statusUrl).json({ ...view, recipients: stored });
  });

  router.get('/campaigns/:campaignId/distributions/:distributionId', async (req, res) => {
    const description = await temporal(() => requireDistribution(client, req.params.campaignId, req.params.distributionId));
    const progress = await temporal(() => distributionProgress(deps, description));
    res.json(distributionView(description, progress.progress, progress.unavailable));
  });

  const action = (path: string, send: (workflowId: string, body: unknown) => Promise<void>) =>
    router.post(`/campaigns/:campaignId/distributions/:distributionId/${path}`, small, async (req, res) => {
      const description = await temporal(() => requireDistribution(client, req.params.campaignId, req.params.distributionId));
      if (description.status.name !== 'RUNNING') {
        throw conflict('already_completed', `distribution "${req.params.distributionId}" has already finished`, {
          executionStatus: description.status.name,
        });
      }
      await temporal(() => send(description.workflowId, req.body));
      res.status(202).json({ distributionId: req.params.distributionId, action: path, statusUrl: distributionUrl(req.params.campaignId, req.params.distributionId) });
    });
  action('pause', (workflowId) => client.workflow.getHandle(workflowId).signal(pauseDistributionSignal));
  action('resume', (workflowId) => client.workflow.getHandle(workflowId).signal(resumeDistributionSignal));
  action('cancel', (workflowId, body) => client.workflow.getHandle(workflowId).signal(cancelDistributionSignal, parseBody(cancelSchema, body)));

  return router;
}

/** Starts the workflow unless its id is taken: a repeat joins the running one, or finds the closed one. */
async function startOnce(
  client: Client,
  type: string,
  options: Pick<WorkflowStartOptions, 'workflowId' | 'taskQueue' | 'args' | 'memo' | 'staticSummary' | 'typedSearchAttributes'>,
): Promise<void> {
  try {
    await client.workflow.start(type, {
      ...options,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

async function issuanceView(client: Client, description: WorkflowExecutionDescription) {
  const execution = description.status.name;
  const requestId = description.workflowId.slice(issuanceWorkflowId('').length);
  let result: IssuanceResult | null = null;
  let failure: string | null = null;
  if (execution === 'COMPLETED') result = await client.workflow.getHandle<IssuanceWorkflow>(description.workflowId).result();
  else if (execution !== 'RUNNING') failure = `the issuance workflow ended ${execution}`;
  return {
    requestId,
    status: result?.status ?? (execution === 'RUNNING' ? 'RUNNING' : 'FAILED'),
    result,
    ...(failure ? { failure } : {}),
    statusUrl: `/coupons/issuances/${encodeURIComponent(requestId)}`,
  };
}

async function distributionProgress(
  deps: CouponRoutesDeps,
  description: WorkflowExecutionDescription,
): Promise<{ progress: DistributionProgress | null; unavailable?: string }> {
  const handle = deps.client.workflow.getHandle<DistributionWorkflow>(description.workflowId);
  if (description.status.name === 'COMPLETED') return { progress: await handle.result() };
  if (description.status.name !== 'RUNNING') return { progress: null };
  const progress = await queryWithin(deps.client, deps.stateQueryTimeoutMs, () => handle.query(distributionProgressQuery));
  return progress !== null ? { progress } : { progress: null, unavailable: `no worker answered the progress query within ${deps.stateQueryTimeoutMs} ms` };
}

function distributionView(description: WorkflowExecutionDescription, progress: DistributionProgress | null, unavailable?: string) {
  const execution = description.status.name;
  const campaignId = String(description.memo?.campaignId);
  const distributionId = description.workflowId.slice(distributionWorkflowId('').length);
  return {
    distributionId,
    campaignId,
    status: progress?.status ?? (execution === 'RUNNING' ? 'RUNNING' : 'FAILED'),
    progress,
    ...(unavailable ? { progressUnavailable: unavailable } : {}),
    execution: { status: execution, runId: description.runId },
    statusUrl: distributionUrl(campaignId, distributionId),
  };
}

function distributionUrl(campaignId: string, distributionId: string): string {
  return `/campaigns/${encodeURIComponent(campaignId)}/distributions/${encodeURIComponent(distributionId)}`;
}

async function requireDistribution(client: Client, campaignId: string, distributionId: string): Promise<WorkflowExecutionDescription> {
  const description = await describeWorkflowOfType(client, distributionWorkflowId(distributionId), WORKFLOW_TYPES.couponDistribution);
  if (!description || description.memo?.campaignId !== campaignId) {
    throw notFound(`no distribution "${distributionId}" of campaign "${campaignId}"`);
  }
  return description;
}
