// Operator endpoints for reconciliation: see the mismatches and the latest run (read from our
// reconciliation tables), decide an open mismatch (the `resolve` Update to its workflow, which
// accepts or refuses it and carries it out), and start a run now instead of waiting for the Schedule.
import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  type Client,
} from '@temporalio/client';
import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { conflict, notFound } from '../../lib/http-errors.ts';
import {
  mismatchStartAttributes,
  mismatchSummary,
  mismatchWorkflowId,
  reconciliationStartAttributes,
  reconciliationSummary,
  resolveMismatchUpdate,
  type ResolveRequest,
} from '../../shared/reconciliation.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import type { MismatchResolutionInput } from '../../workflows/mismatch-resolution.ts';
import type { ReconciliationOptions } from '../../workflows/reconciliation.ts';
import { performOperatorAction, type AuditLog } from '../operator-action.ts';
import { auditRefusal } from '../operator-actions.ts';
import type { RouteDeclarer } from '../route.ts';
import { callTemporal } from '../temporal.ts';

export interface ReconciliationRoutesDeps {
  client: Client;
  db: Db;
  taskQueue: string;
  temporalTimeoutMs: number;
  /** Where operator actions are recorded (who, what, which run, how it ended). */
  audit: AuditLog;
}

const mismatchStatus = z.enum(['OPEN', 'AUTO_RESOLVED', 'RESOLVED']);
const listQuery = z.object({
  status: mismatchStatus.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const mismatchParams = z.object({ id: z.string().min(1).max(500) });
const noQuery = z.object({});

// no `by`: the acting person is the token's subject
const resolveBody = z.object({
  action: z.enum(['complete-order', 'refund', 'accept']),
  note: z.string().trim().min(1).max(2000),
});

const isoDate = z.iso.datetime({ offset: true });
const runBody = z.object({
  periodStart: isoDate.optional(),
  periodEnd: isoDate.optional(),
  boundaryGraceMs: z.number().int().min(0).max(86_400_000).optional(),
  lookbackMs: z.number().int().positive().max(31 * 86_400_000).optional(),
});

const mismatchView = z.object({
  id: z.string(),
  runId: z.string(),
  kind: z.enum(['MISSING_OURS', 'MISSING_AT_PROVIDER', 'STATUS_MISMATCH', 'AMOUNT_MISMATCH']),
  reference: z.string(),
  pspPaymentId: z.string().nullable(),
  transactionId: z.string().nullable(),
  details: z.unknown(),
  status: mismatchStatus,
  action: z.string().nullable(),
  resolvedBy: z.string().nullable(),
  resolutionNote: z.string().nullable(),
  resolvedAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  workflowId: z.string(),
});
const runView = z.object({
  id: z.string(),
  workflowId: z.string(),
  periodStart: z.string(),
  periodEnd: z.string(),
  boundaryGraceMs: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  examined: z.number().int(),
  deferred: z.number().int(),
  detected: z.number().int(),
  newMismatches: z.number().int(),
  alreadyKnown: z.number().int(),
  autoResolved: z.number().int(),
  flagged: z.number().int(),
  report: z.unknown(),
});
const resolveAnswer = z.object({
  mismatchId: z.string(),
  workflowId: z.string(),
  resolution: z.object({ action: z.string(), by: z.string(), note: z.string() }),
  /** What the run answered: its state after accepting the decision. */
  state: z.unknown(),
  statusUrl: z.string(),
});
const runStarted = z.object({ workflowId: z.string(), runId: z.string(), latestRunUrl: z.string() });

export function reconciliationRoutes(route: RouteDeclarer, deps: ReconciliationRoutesDeps): void {
  const { client, db } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);

  route(
    {
      method: 'get',
      path: '/reconciliation/mismatches',
      summary: 'Mismatches between the provider and our records, oldest first',
      tag: 'reconciliation',
      permissions: ['mismatches:read'],
      query: listQuery,
      responses: { 200: { description: 'The mismatches', schema: z.object({ mismatches: z.array(mismatchView) }) } },
    },
    async ({ res, query: { status, limit } }) => {
      const mismatches = await db.reconciliationMismatch.findMany({
        where: status ? { status } : {},
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit,
      });
      res.json({ mismatches: mismatches.map(view) });
    },
  );

  route(
    {
      method: 'get',
      path: '/reconciliation/mismatches/:id',
      summary: 'One mismatch and how it was resolved',
      tag: 'reconciliation',
      permissions: ['mismatches:read'],
      params: mismatchParams,
      query: noQuery,
      responses: { 200: { description: 'The mismatch', schema: mismatchView } },
    },
    async ({ res, params: { id } }) => {
      const mismatch = await db.reconciliationMismatch.findUnique({ where: { id } });
      if (!mismatch) throw notFound(`no mismatch "${id}"`);
      res.json(view(mismatch));
    },
  );

  route(
    {
      method: 'get',
      path: '/reconciliation/runs/latest',
      summary: 'The latest reconciliation run and its counts',
      tag: 'reconciliation',
      permissions: ['mismatches:read'],
      query: noQuery,
      responses: { 200: { description: 'The run', schema: runView }, 404: { description: 'No reconciliation run yet' } },
    },
    async ({ res }) => {
      const run = await db.reconciliationRun.findFirst({ orderBy: { startedAt: 'desc' } });
      if (!run) throw notFound('no reconciliation run yet');
      res.json(run);
    },
  );

  route(
    {
      method: 'post',
      path: '/reconciliation/mismatches/:id/resolve',
      summary: "Decide an open mismatch; its workflow accepts (200, its new state) or refuses (409, its reason)",
      tag: 'reconciliation',
      permissions: ['mismatches:resolve'],
      params: mismatchParams,
      body: resolveBody,
      responses: { 200: { description: 'The mismatch workflow accepted the decision', schema: resolveAnswer } },
    },
    async ({ res, params: { id }, body, principal }) => {
      const caller = principal!;
      const decision: ResolveRequest = { action: body.action, by: caller.subject, note: body.note };
      const workflowId = mismatchWorkflowId(id);
      const mismatch = await db.reconciliationMismatch.findUnique({ where: { id } });
      if (!mismatch) throw notFound(`no mismatch "${id}"`);
      const attempt = { principal: caller, action: 'mismatch.resolve', workflowId, request: { ...decision } };
      // A resolved mismatch never reopens: refusing on the record races with nothing.
      if (mismatch.status !== 'OPEN') {
        throw await auditRefusal(
          deps.audit,
          attempt,
          conflict('already_resolved', `mismatch "${id}" is already ${mismatch.status}`, {
            status: mismatch.status,
            action: mismatch.action,
            resolvedBy: mismatch.resolvedBy,
          }),
        );
      }
      const input: MismatchResolutionInput = {
        mismatchId: id,
        kind: mismatch.kind,
        reference: mismatch.reference,
        pspPaymentId: mismatch.pspPaymentId,
        summary: String((mismatch.details as { summary?: unknown }).summary ?? mismatch.kind),
      };
      // Normally the reconciliation run started the workflow; should it be missing (say, it was
      // terminated first), it is started with the record's facts. Starting is idempotent.
      await temporal(async () => {
        try {
          await client.workflow.start(WORKFLOW_TYPES.mismatchResolution, {
            workflowId,
            taskQueue: deps.taskQueue,
            args: [input],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            staticSummary: mismatchSummary(input),
            typedSearchAttributes: mismatchStartAttributes(input),
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        }
      });
      const state = await performOperatorAction(
        { client, audit: deps.audit, temporalTimeoutMs: deps.temporalTimeoutMs },
        { principal: caller, action: 'mismatch.resolve', workflowId, update: resolveMismatchUpdate, arg: decision },
      );
      res.json({ mismatchId: id, workflowId, resolution: decision, state, statusUrl: `/reconciliation/mismatches/${encodeURIComponent(id)}` });
    },
  );

  route(
    {
      method: 'post',
      path: '/reconciliation/run',
      summary: 'Start a reconciliation run now instead of waiting for the schedule',
      tag: 'reconciliation',
      permissions: ['reconciliation:run'],
      body: runBody,
      responses: { 202: { description: 'The run started', schema: runStarted } },
    },
    async ({ res, body }) => {
      const options: ReconciliationOptions = body;
      const workflowId = `reconciliation-manual-${new Date().toISOString()}-${randomUUID().slice(0, 8)}`;
      const handle = await temporal(() =>
        client.workflow.start(WORKFLOW_TYPES.reconciliation, {
          workflowId,
          taskQueue: deps.taskQueue,
          args: [options],
          staticSummary: reconciliationSummary('operator'),
          typedSearchAttributes: reconciliationStartAttributes(),
        }),
      );
      res.status(202).json({ workflowId, runId: handle.firstExecutionRunId, latestRunUrl: '/reconciliation/runs/latest' });
    },
  );
}

function view(m: {
  id: string; runId: string; kind: string; reference: string; pspPaymentId: string | null; transactionId: string | null;
  details: unknown; status: string; action: string | null; resolvedBy: string | null; resolutionNote: string | null;
  resolvedAt: Date | null; createdAt: Date; updatedAt: Date;
}) {
  return { ...m, workflowId: mismatchWorkflowId(m.id) };
}
