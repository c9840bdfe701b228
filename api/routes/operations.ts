// The operations page's API: GET /operations/runs lists the runs waiting for a person (the
// visibility query every workflow feeds through NeedsAttention), each with its summary, its
// current details and the actions it accepts now; POST /operations/runs/:workflowId/retry-step
// nudges a step in a slow retry loop; GET /operations/runs/:workflowId/history tells one run's
// story from its event history (api/history-summary.ts). GET /ops serves the page itself (api/ops-page/). Every
// other action the page offers is an existing endpoint (shared/operations.ts names which).
import { fileURLToPath } from 'node:url';
import { Router } from 'express';
import {
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { z } from 'zod';
import { conflict, invalidRequest, notFound, parse, parseBody } from '../../lib/http-errors.ts';
import { retryStepSignal, type OperationsRun, type RunHistory } from '../../shared/operations.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { decodeSummaries, historyLines } from '../history-summary.ts';
import { actionsFor, RETRY_STEP_TYPES } from '../operator-actions.ts';
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
}

/** Everything waiting for a person right now. */
export const DEFAULT_RUNS_QUERY = 'NeedsAttention = true AND ExecutionStatus = "Running"';
/** One page, so a careless filter (`WorkflowType = "checkout"`) cannot make the API read thousands of runs. */
export const MAX_RUNS = 100;

/** The SDK's built-in query (every TypeScript workflow answers it): definition and `currentDetails`. */
const WORKFLOW_METADATA_QUERY = '__temporal_workflow_metadata';
const GRPC_NOT_FOUND = 5;

const runsQuery = z.object({ query: z.string().trim().min(1).max(1_000).optional() });
const historyQuery = z.object({ runId: z.string().trim().min(1).max(100).optional() });
const retryStepSchema = z.object({ by: z.string().trim().min(1).max(200), reason: z.string().trim().min(1).max(2_000) });

const PAGE_DIR = fileURLToPath(new URL('../ops-page/', import.meta.url));
const PAGE_FILES: Record<string, string> = { '/ops': 'index.html', '/ops/ops.js': 'ops.js', '/ops/ops.css': 'ops.css' };

export function operationsRoutes(deps: OperationsRoutesDeps): Router {
  const { client } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const router = Router();

  for (const [path, file] of Object.entries(PAGE_FILES)) {
    router.get(path, (_req, res) => {
      // the page loads nothing from elsewhere and runs no inline script
      res.setHeader('Content-Security-Policy', "default-src 'self'; frame-ancestors 'none'");
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(file, { root: PAGE_DIR });
    });
  }

  router.get('/operations/runs', async (req, res) => {
    const { query = DEFAULT_RUNS_QUERY } = parse(runsQuery, req.query);
    const runs = await temporal(async () => {
      // all at once: each metadata query may wait its whole deadline for a worker, and in
      // sequence those waits would outlast the request's own Temporal deadline
      const infos = await listRuns(client, query);
      return await Promise.all(infos.map((info) => operationsRun(deps, info)));
    });
    res.json({ runs });
  });

  router.get('/operations/runs/:workflowId/history', async (req, res) => {
    const workflowId = req.params.workflowId;
    const { runId } = parse(historyQuery, req.query);
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
      const summaries = await decodeSummaries(events, client.options.loadedDataConverter);
      return { workflowId, runId: description.runId, ...historyLines(events, summaries) };
    });
    res.json(body);
  });

  router.post('/operations/runs/:workflowId/retry-step', async (req, res) => {
    const workflowId = req.params.workflowId;
    const decision = parseBody(retryStepSchema, req.body);
    await temporal(async () => {
      const description = await describeWorkflow(client, workflowId);
      if (!description) throw notFound(`no workflow run with id "${workflowId}"`);
      if (description.status.name !== 'RUNNING') {
        throw conflict('already_completed', `run "${workflowId}" has already finished`, { executionStatus: description.status.name });
      }
      if (!RETRY_STEP_TYPES.includes(description.type)) {
        throw conflict('not_supported', `a ${description.type} run has no step to retry; retry-step applies to ${RETRY_STEP_TYPES.join(' and ')}`);
      }
      // As the refund actions do: refuse what the run would ignore, so the operator learns it now.
      // Describe reads the run's own search attributes, not the (lagging) visibility store.
      const flowStatus = description.typedSearchAttributes.get(FlowStatusKey) ?? null;
      const needsAttention = description.typedSearchAttributes.get(NeedsAttentionKey) ?? false;
      if (!actionsFor({ workflowType: description.type, flowStatus, needsAttention, running: true }).includes('retryStep')) {
        throw conflict(
          'not_waiting_for_action',
          `run "${workflowId}" has no step in a slow retry (${needsAttention ? `it waits for a decision while ${flowStatus}` : 'NeedsAttention is false'})`,
          { flowStatus, needsAttention },
        );
      }
      try {
        await client.workflow.getHandle(workflowId).signal(retryStepSignal, decision);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw conflict('already_completed', `run "${workflowId}" has already finished`);
        throw err;
      }
    });
    res.status(202).json({ workflowId, action: 'retryStep', ...decision });
  });

  return router;
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

async function operationsRun(deps: OperationsRoutesDeps, info: WorkflowExecutionInfo): Promise<OperationsRun> {
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
    actions: actionsFor({ workflowType: info.type, flowStatus, needsAttention, running }),
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
