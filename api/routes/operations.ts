// The operations page's API: GET /operations/runs lists the runs waiting for a person (the
// visibility query every workflow feeds through NeedsAttention), each with its summary, its
// current details and the actions the caller may take on it now; POST
// /operations/runs/:workflowId/retry-step asks a step in a slow retry to try again now (a
// Temporal Update the run accepts or refuses); GET /operations/runs/:workflowId/history tells
// one run's story from its event history (api/history-summary.ts). GET /ops serves the page
// itself (api/ops-page/). Every other action the page offers is an existing endpoint
// (shared/operations.ts names which).
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowExecutionDescription, WorkflowExecutionInfo } from '@temporalio/client';
import { z } from 'zod';
import { conflict, invalidRequest, notFound } from '../../lib/http-errors.ts';
import { retryStepUpdate, type OperationsRun, type RunHistory } from '../../shared/operations.ts';
import type { Permission, Principal } from '../../shared/permissions.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { decodeHistoryText, historyLines } from '../history-summary.ts';
import { opsConfigRoute, type OpsSignInClient } from '../ops-page/sign-in.ts';
import { performOperatorAction, type AuditLog } from '../operator-action.ts';
import { actionsFor, auditRefusal, RETRY_STEP_TYPES } from '../operator-actions.ts';
import type { RouteDeclarer } from '../route.ts';
import {
  callTemporal,
  describeWorkflow,
  errorMessage,
  GRPC_INVALID_ARGUMENT,
  hasGrpcCode,
  isTemporalUnavailable,
  queryWithin,
  webUiUrl,
} from '../temporal.ts';

export interface OperationsRoutesDeps {
  client: Client;
  namespace: string;
  temporalUiUrl: string | undefined;
  temporalTimeoutMs: number;
  /** Deadline for each run's metadata query, which only a worker can answer. */
  stateQueryTimeoutMs: number;
  /** Where operator actions are recorded (who, what, which run, how it ended). */
  audit: AuditLog;
  /** The identity provider the page signs in with (AUTH_ISSUER): its origin is allowed in the page's connect-src. */
  issuerUrl: string;
  /** AUTH_CLIENT_ID and AUTH_AUDIENCE, served to the page at GET /ops/config.json; default the development ones. */
  opsSignIn?: OpsSignInClient;
}

/** Everything waiting for a person right now. */
export const DEFAULT_RUNS_QUERY = 'NeedsAttention = true AND ExecutionStatus = "Running"';
/** One page, so a careless filter (`WorkflowType = "checkout"`) cannot make the API read thousands of runs. */
export const MAX_RUNS = 100;

/** The SDK's built-in query (every TypeScript workflow answers it): definition and `currentDetails`. */
const WORKFLOW_METADATA_QUERY = '__temporal_workflow_metadata';
const GRPC_NOT_FOUND = 5;

/** Temporal's own limit on a workflow id's length. */
const workflowIdParams = z.object({ workflowId: z.string().min(1).max(1_000) });
const runsQuery = z.object({ query: z.string().trim().min(1).max(1_000).optional() });
const historyQuery = z.object({ runId: z.string().trim().min(1).max(100).optional() });
// no `by`: the acting person is the token's subject
const retryStepBody = z.object({ reason: z.string().trim().min(1).max(2_000) });

const operatorActionName = z.enum([
  'approveRefund',
  'rejectRefund',
  'retryRefund',
  'refundManually',
  'abandonRefund',
  'resolveMismatch',
  'cancelCheckout',
  'retryStep',
]);
const operationsRunSchema = z.object({
  workflowId: z.string(),
  runId: z.string(),
  workflowType: z.string(),
  startTime: z.string(),
  flowStatus: z.string().nullable(),
  checkoutStep: z.string().nullable(),
  orderId: z.string().nullable(),
  amountMinor: z.number().nullable(),
  currency: z.string().nullable(),
  region: z.string().nullable(),
  needsAttention: z.boolean(),
  summary: z.string().nullable(),
  currentDetails: z.string().nullable(),
  actions: z.array(operatorActionName),
  webUiUrl: z.string().nullable(),
});
const runHistorySchema = z.object({
  workflowId: z.string(),
  runId: z.string(),
  events: z.array(z.object({ eventId: z.number().int(), time: z.string(), kind: z.string(), text: z.string() })),
  truncated: z.boolean(),
});
const retryStepAnswer = z.object({
  workflowId: z.string(),
  action: z.literal('retryStep'),
  by: z.string(),
  reason: z.string(),
  /** What the run answered: its state after accepting the retry. */
  state: z.unknown(),
});

// The schemas describe the shared types: a change to either fails the typecheck here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _runMatches: Same<z.output<typeof operationsRunSchema>, OperationsRun> = true;
void _runMatches;

const PAGE_DIR = fileURLToPath(new URL('../ops-page/', import.meta.url));
const PAGE_FILES: Record<string, string> = { '/ops': 'index.html', '/ops/ops.js': 'ops.js', '/ops/ops.css': 'ops.css' };

export function operationsRoutes(route: RouteDeclarer, deps: OperationsRoutesDeps): void {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const pagePolicy = pageContentSecurityPolicy(deps.issuerUrl);
  opsConfigRoute(route, { issuer: deps.issuerUrl, ...deps.opsSignIn });

  for (const [path, file] of Object.entries(PAGE_FILES)) {
    route(
      {
        method: 'get',
        path,
        summary: `The operations page (${file}); it signs in through the identity provider itself`,
        tag: 'operations',
        permissions: 'public',
        responses: { 200: { description: file } },
      },
      ({ res }) => {
        res.setHeader('Content-Security-Policy', pagePolicy);
        res.setHeader('Cache-Control', 'no-cache');
        res.sendFile(file, { root: PAGE_DIR });
      },
    );
  }

  route(
    {
      method: 'get',
      path: '/operations/runs',
      summary: 'Runs waiting for a person (or matching a List Filter), each with the actions the caller may take',
      tag: 'operations',
      permissions: ['operations:read'],
      query: runsQuery,
      responses: { 200: { description: 'At most 100 runs', schema: z.object({ runs: z.array(operationsRunSchema) }) } },
    },
    async ({ res, query, principal }) => {
      const permissions = permissionsOf(principal);
      const runs = await temporal(async () => {
        // all at once: each metadata query may wait its whole deadline for a worker, and in
        // sequence those waits would outlast the request's own Temporal deadline
        const infos = await listRuns(client, query.query ?? DEFAULT_RUNS_QUERY);
        return await Promise.all(infos.map((info) => operationsRun(deps, info, permissions)));
      });
      res.json({ runs });
    },
  );

  route(
    {
      method: 'get',
      path: '/operations/runs/:workflowId/history',
      summary: "One run's story from its event history: steps by their summaries, signals and updates by name",
      tag: 'operations',
      permissions: ['operations:history'],
      params: workflowIdParams,
      query: historyQuery,
      responses: { 200: { description: 'The newest lines, oldest first', schema: runHistorySchema } },
    },
    async ({ res, params: { workflowId }, query: { runId } }) => {
      const body = await temporal(async (): Promise<RunHistory> => {
        // describe first: it names the run (the latest one when no runId is given) and tells a
        // missing workflow apart, which fetchHistory reports only as a raw gRPC error
        const missing = () => notFound(`no workflow run with id "${workflowId}"${runId ? ` and run id "${runId}"` : ''}`);
        const description = await describeRun(client, workflowId, runId);
        if (!description) throw missing();
        const history = await client.workflow
          .getHandle(workflowId, description.runId)
          .fetchHistory()
          .catch((err: unknown) => {
            throw hasGrpcCode(err, GRPC_NOT_FOUND) ? missing() : err; // removed (retention) since describe
          });
        const events = history.events ?? [];
        const text = await decodeHistoryText(events, client.options.loadedDataConverter);
        return { workflowId, runId: description.runId, ...historyLines(events, text) };
      });
      res.json(body);
    },
  );

  route(
    {
      method: 'post',
      path: '/operations/runs/:workflowId/retry-step',
      summary: 'Retry a refused or stalled step now; the run accepts (200, its new state) or refuses (409, its reason)',
      tag: 'operations',
      permissions: ['operations:retry-step'],
      params: workflowIdParams,
      body: retryStepBody,
      responses: { 200: { description: 'The run accepted the retry', schema: retryStepAnswer } },
    },
    async ({ res, params: { workflowId }, body, principal }) => {
      const caller = principal!;
      const decision = { by: caller.subject, reason: body.reason };
      const description = await temporal(() => describeWorkflow(client, workflowId));
      if (!description) throw notFound(`no workflow run with id "${workflowId}"`);
      // A run's type never changes, so refusing here races with nothing; the run's state is
      // the run's to judge (its validator), never read here first.
      if (!RETRY_STEP_TYPES.includes(description.type)) {
        throw await auditRefusal(
          deps.audit,
          { principal: caller, action: 'operations.retry-step', workflowId, request: decision },
          conflict('not_supported', `a ${description.type} run has no step to retry; retry-step applies to ${RETRY_STEP_TYPES.join(' and ')}`),
        );
      }
      const state = await performOperatorAction(
        { client, audit: deps.audit, temporalTimeoutMs: deps.temporalTimeoutMs },
        { principal: caller, action: 'operations.retry-step', workflowId, update: retryStepUpdate, arg: decision },
      );
      res.json({ workflowId, action: 'retryStep', ...decision, state });
    },
  );
}

/**
 * The page loads nothing from elsewhere and runs no inline script; it only talks to this API
 * and to the identity provider (discovery, token endpoint) it signs in with.
 */
export function pageContentSecurityPolicy(issuerUrl: string): string {
  return `default-src 'self'; connect-src 'self' ${new URL(issuerUrl).origin}; frame-ancestors 'none'`;
}

function permissionsOf(principal: Principal | null): ReadonlySet<Permission> {
  return principal?.permissions ?? new Set();
}

/** The first MAX_RUNS runs matching `query`; a List Filter Temporal cannot parse is the caller's 400. */
async function listRuns(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const infos: WorkflowExecutionInfo[] = [];
  try {
    for await (const info of client.workflow.list({ query, pageSize: MAX_RUNS })) {
      infos.push(info);
      if (infos.length >= MAX_RUNS) break;
    }
  } catch (err) {
    if (hasGrpcCode(err, GRPC_INVALID_ARGUMENT)) {
      throw invalidRequest(`query: Temporal cannot run this List Filter (${errorMessage(err).replace(/^\d+ [A-Z_]+: /, '')})`, 'query');
    }
    throw err;
  }
  return infos;
}

async function operationsRun(deps: OperationsRoutesDeps, info: WorkflowExecutionInfo, permissions: ReadonlySet<Permission>): Promise<OperationsRun> {
  const attributes = info.typedSearchAttributes;
  const flowStatus = attributes.get(FlowStatusKey) ?? null;
  const needsAttention = attributes.get(NeedsAttentionKey) ?? false;
  const running = info.status.name === 'RUNNING';
  const [summary, currentDetails] = await Promise.all([
    staticSummary(deps.client, info.workflowId, info.runId),
    running ? currentDetailsOf(deps, info.workflowId, info.runId) : null,
  ]);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    workflowType: info.type,
    startTime: info.startTime.toISOString(),
    flowStatus,
    checkoutStep: attributes.get(CheckoutStepKey) ?? null,
    orderId: attributes.get(OrderIdKey) ?? null,
    amountMinor: attributes.get(AmountMinorKey) ?? null,
    currency: attributes.get(CurrencyKey) ?? null,
    region: attributes.get(RegionKey) ?? null,
    needsAttention,
    summary,
    currentDetails,
    actions: actionsFor({ workflowType: info.type, flowStatus, needsAttention, running }, permissions),
    webUiUrl: webUiUrl(deps.temporalUiUrl, deps.namespace, info.workflowId, info.runId),
  };
}

/** describeWorkflow, where a run id that is not one (Temporal: "invalid argument") is not found either. */
async function describeRun(client: Client, workflowId: string, runId: string | undefined): Promise<WorkflowExecutionDescription | null> {
  try {
    return await describeWorkflow(client, workflowId, runId);
  } catch (err) {
    if (hasGrpcCode(err, GRPC_INVALID_ARGUMENT) || hasGrpcCode(err, GRPC_NOT_FOUND)) return null;
    throw err;
  }
}

/** The start's static summary; only describe carries it (a list entry does not). Null once the run is gone. */
async function staticSummary(client: Client, workflowId: string, runId: string): Promise<string | null> {
  const description = await describeWorkflow(client, workflowId, runId);
  return (await description?.staticSummary()) || null;
}

/**
 * What the workflow says it is doing (setCurrentDetails). A worker must answer, so no worker,
 * a run that closed meanwhile or a failing query all mean "unknown" (null), never a failed list;
 * only an unreachable Temporal fails the request (as 503).
 */
async function currentDetailsOf(deps: OperationsRoutesDeps, workflowId: string, runId: string): Promise<string | null> {
  const deadline = Date.now() + deps.stateQueryTimeoutMs;
  try {
    const metadata = await queryWithin(deps.client, deps.stateQueryTimeoutMs, () =>
      deps.client.workflow.getHandle(workflowId, runId).query<{ currentDetails?: unknown }>(WORKFLOW_METADATA_QUERY),
    );
    const details = metadata?.currentDetails;
    return typeof details === 'string' && details ? details : null;
  } catch (err) {
    if (isTemporalUnavailable(err, deadline)) throw err;
    return null;
  }
}
