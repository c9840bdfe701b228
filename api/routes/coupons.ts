// Coupon issuance and campaign distribution. POST /coupons/issuances starts (or finds) the
// CouponIssuance workflow of a request id; GET /coupons/issuances/:requestId reports its result,
// which is the single source of truth (`?wait=true` waits up to 10 s for it). POST
// /campaigns/:id/distribute stores the recipients (idempotently) and starts the distribution;
// GET .../distributions/:distributionId reads its progress query (or its result); pause,
// resume and cancel are Updates the distribution accepts or refuses.
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowStartOptions,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { conflict, HttpError, notFound } from '../../lib/http-errors.ts';
import {
  cancelDistributionUpdate,
  distributionProgressQuery,
  distributionStartAttributes,
  distributionSummary,
  distributionWorkflowId,
  issuanceStartAttributes,
  issuanceSummary,
  issuanceWorkflowId,
  pauseDistributionUpdate,
  resumeDistributionUpdate,
  type DistributionInput,
  type DistributionProgress,
  type IssuanceInput,
  type IssuanceResult,
} from '../../shared/coupons.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import { customerIdSchema } from '../checkout-request.ts';
import { performOperatorAction, type AuditLog } from '../operator-action.ts';
import type { RouteDeclarer } from '../route.ts';
import { callTemporal, describeWorkflowOfType, isTemporalBusy, isTimeout, queryWithin } from '../temporal.ts';

/** The signatures of workflows/coupon-issuance.ts and workflows/coupon-distribution.ts, for typed starts. */
type IssuanceWorkflow = (input: IssuanceInput) => Promise<IssuanceResult>;
type DistributionWorkflow = (input: DistributionInput) => Promise<DistributionProgress>;

export const MAX_RECIPIENTS = 100_000;
/** How long `?wait=true` holds the answer for a running issuance. */
const RESULT_WAIT_MS = 10_000;
/** Rows per INSERT: three parameters each, well under PostgreSQL's 65,535. */
const RECIPIENT_INSERT_CHUNK = 10_000;
/** 100,000 recipients of up to 64 characters, as JSON: the one body larger than the default. */
const RECIPIENT_LIST_LIMIT = '10mb';

export interface CouponRoutesDeps {
  client: Client;
  /** Our own database: the distribution's recipients are stored there. Without it, distribution routes are absent. */
  db?: Db;
  taskQueue: string;
  temporalTimeoutMs: number;
  stateQueryTimeoutMs: number;
  /** Where operator actions (pause, resume, cancel) are recorded. */
  audit: AuditLog;
}

const key = z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1 to 100 characters from A-Z a-z 0-9 . _ : -');
const id = z.string().trim().min(1).max(200);
const issuanceBody = z.object({ requestId: key, campaignId: id, customerId: customerIdSchema });
const issuanceParams = z.object({ requestId: key });
const issuanceQuery = z.object({ wait: z.enum(['true', 'false']).optional() });
const campaignParams = z.object({ campaignId: id });
const distributionParams = z.object({ campaignId: id, distributionId: key });
const noQuery = z.object({});
const distributeBody = z.object({
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
// no `by`: the acting person is the token's subject
const reasonBody = z.object({ reason: z.string().trim().min(1).max(2000).optional() });
const cancelBody = z.object({ reason: z.string().trim().min(1).max(2000).default('cancelled through the API') });

const issuanceResult = z.object({
  requestId: z.string(),
  campaignId: z.string(),
  customerId: z.string(),
  status: z.enum(['ISSUED', 'EXHAUSTED', 'LIMIT_REACHED', 'CAMPAIGN_CLOSED', 'FAILED']),
  couponCode: z.string().nullable(),
  reason: z.string().nullable(),
});
const issuanceView = z.object({
  requestId: z.string(),
  status: z.enum(['RUNNING', 'ISSUED', 'EXHAUSTED', 'LIMIT_REACHED', 'CAMPAIGN_CLOSED', 'FAILED']),
  result: issuanceResult.nullable(),
  failure: z.string().optional(),
  statusUrl: z.string(),
});
const totals = z.object({ issued: z.number().int(), exhausted: z.number().int(), limitReached: z.number().int(), failed: z.number().int() });
const distributionStatus = z.enum(['RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED']);
const progressSchema = z.object({
  distributionId: z.string(),
  campaignId: z.string(),
  status: distributionStatus,
  recipients: z.number().int(),
  processed: z.number().int(),
  totals,
});
const distributionViewSchema = z.object({
  distributionId: z.string(),
  campaignId: z.string(),
  status: z.enum(['RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED', 'FAILED']),
  progress: progressSchema.nullable(),
  progressUnavailable: z.string().optional(),
  execution: z.object({ status: z.string(), runId: z.string() }),
  statusUrl: z.string(),
});

// The schemas describe the shared types: a change to either fails the typecheck here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _resultMatches: Same<z.output<typeof issuanceResult>, IssuanceResult> = true;
const _progressMatches: Same<z.output<typeof progressSchema>, DistributionProgress> = true;
void _resultMatches;
void _progressMatches;

export function couponRoutes(route: RouteDeclarer, deps: CouponRoutesDeps): void {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);

  route(
    {
      method: 'post',
      path: '/coupons/issuances',
      summary: "Issue one campaign coupon to a customer, once per requestId",
      tag: 'coupons',
      permissions: ['coupons:issue'],
      body: issuanceBody,
      responses: { 202: { description: 'The issuance started (or was found); its result follows at statusUrl', schema: issuanceView } },
    },
    async ({ res, body: input }) => {
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
      const view = await temporal(() => issuanceViewOf(client, description));
      res.status(202).location(view.statusUrl).json(view);
    },
  );

  route(
    {
      method: 'get',
      path: '/coupons/issuances/:requestId',
      summary: 'The result of an issuance (`?wait=true` waits up to 10 s for a running one)',
      tag: 'coupons',
      permissions: ['coupons:issue'],
      params: issuanceParams,
      query: issuanceQuery,
      responses: { 200: { description: 'The issuance', schema: issuanceView } },
    },
    async ({ res, params: { requestId }, query }) => {
      const description = await temporal(() => describeWorkflowOfType(client, issuanceWorkflowId(requestId), WORKFLOW_TYPES.couponIssuance));
      if (!description) throw notFound(`no issuance for requestId "${requestId}"`);
      if (description.status.name === 'RUNNING' && query.wait === 'true') {
        const handle = client.workflow.getHandle<IssuanceWorkflow>(description.workflowId);
        const deadline = Date.now() + RESULT_WAIT_MS;
        try {
          await client.connection.withDeadline(deadline, () => handle.result());
        } catch (err) {
          // still running at the deadline, ended without a result, or Temporal too busy to wait
          // on this run just now (other callers already long-poll it): either way, described below
          if (!isTimeout(err, deadline) && !isTemporalBusy(err) && !(err instanceof WorkflowFailedError)) throw err;
        }
        const closed = await temporal(() => handle.describe());
        res.json(await temporal(() => issuanceViewOf(client, closed)));
        return;
      }
      res.json(await temporal(() => issuanceViewOf(client, description)));
    },
  );

  const { db } = deps;
  if (!db) return;

  route(
    {
      method: 'post',
      path: '/campaigns/:campaignId/distribute',
      summary: "Distribute a campaign's coupons to a list of customers (up to 100,000), once per distributionId",
      tag: 'coupons',
      permissions: ['campaigns:distribute'],
      params: campaignParams,
      body: distributeBody,
      bodyLimit: RECIPIENT_LIST_LIMIT,
      responses: {
        202: { description: 'The distribution started (or was found)', schema: distributionViewSchema.extend({ recipients: z.number().int() }) },
      },
    },
    async ({ res, params: { campaignId }, body: request }) => {
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
    },
  );

  route(
    {
      method: 'get',
      path: '/campaigns/:campaignId/distributions/:distributionId',
      summary: "A distribution's progress (or its result)",
      tag: 'coupons',
      permissions: ['campaigns:distribute'],
      params: distributionParams,
      query: noQuery,
      responses: { 200: { description: 'The distribution', schema: distributionViewSchema } },
    },
    async ({ res, params: { campaignId, distributionId } }) => {
      const description = await temporal(() => requireDistribution(client, campaignId, distributionId));
      const progress = await temporal(() => distributionProgress(deps, description));
      res.json(distributionView(description, progress.progress, progress.unavailable));
    },
  );

  /** pause, resume, cancel: Updates the distribution accepts (200, its progress now) or refuses (409, its reason). */
  const action = <B extends z.ZodType<{ reason?: string }>>(
    verb: 'pause' | 'resume' | 'cancel',
    body: B,
    update: UpdateDefinition<DistributionProgress, [{ by: string; reason?: string }]>,
  ) =>
    route(
      {
        method: 'post',
        path: `/campaigns/:campaignId/distributions/:distributionId/${verb}`,
        summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a distribution; it accepts (200, its progress now) or refuses (409, its reason)`,
        tag: 'coupons',
        permissions: ['campaigns:distribute'],
        params: distributionParams,
        body,
        responses: { 200: { description: `The distribution accepted the ${verb}`, schema: distributionViewSchema.extend({ action: z.string(), by: z.string() }) } },
      },
      async ({ res, params: { campaignId, distributionId }, body: { reason }, principal }) => {
        const caller = principal!;
        // The campaign a distribution belongs to never changes: checking it first races with nothing.
        const description = await temporal(() => requireDistribution(client, campaignId, distributionId));
        const arg = { by: caller.subject, ...(reason === undefined ? {} : { reason }) };
        const progress = await performOperatorAction(
          { client, audit: deps.audit, temporalTimeoutMs: deps.temporalTimeoutMs },
          { principal: caller, action: `distribution.${verb}`, workflowId: description.workflowId, update, arg },
        );
        res.json({ ...distributionView(description, progress), action: verb, by: caller.subject });
      },
    );
  action('pause', reasonBody, pauseDistributionUpdate);
  action('resume', reasonBody, resumeDistributionUpdate);
  action('cancel', cancelBody, cancelDistributionUpdate);
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

async function issuanceViewOf(client: Client, description: WorkflowExecutionDescription) {
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
