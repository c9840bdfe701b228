// Operator endpoints for reconciliation: see the mismatches and the latest run (read from our
// reconciliation tables), decide an open mismatch (the `resolve` signal to its workflow, which
// carries the action out), and start a run now instead of waiting for the Schedule.
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { type Client } from '@temporalio/client';
import { z } from 'zod';
import type { Db } from '../../lib/db.ts';
import { conflict, notFound, parse, parseBody } from '../../lib/http-errors.ts';
import {
  mismatchStartAttributes,
  mismatchSummary,
  mismatchWorkflowId,
  reconciliationStartAttributes,
  reconciliationSummary,
  resolveMismatchSignal,
  type ResolveRequest,
} from '../../shared/reconciliation.ts';
import type { MismatchResolutionInput } from '../../workflows/mismatch-resolution.ts';
import type { ReconciliationOptions } from '../../workflows/reconciliation.ts';
import { callTemporal } from '../temporal.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';

export interface ReconciliationRoutesDeps {
  client: Client;
  db: Db;
  taskQueue: string;
  temporalTimeoutMs: number;
}

const listQuery = z.object({
  status: z.enum(['OPEN', 'AUTO_RESOLVED', 'RESOLVED']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const resolveSchema = z.object({
  action: z.enum(['complete-order', 'refund', 'accept']),
  by: z.string().trim().min(1).max(200),
  note: z.string().trim().min(1).max(2000),
});

const isoDate = z.iso.datetime({ offset: true });
const runSchema = z.object({
  periodStart: isoDate.optional(),
  periodEnd: isoDate.optional(),
  boundaryGraceMs: z.number().int().min(0).optional(),
  lookbackMs: z.number().int().positive().optional(),
});

export function reconciliationRoutes(deps: ReconciliationRoutesDeps): Router {
  const { client, db } = deps;
  const temporal = <T>(fn: () => Promise<T>) => callTemporal(client, deps.temporalTimeoutMs, fn);
  const router = Router();

  router.get('/reconciliation/mismatches', async (req, res) => {
    const { status, limit } = parse(listQuery, req.query);
    const mismatches = await db.reconciliationMismatch.findMany({
      where: status ? { status } : {},
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: limit,
    });
    res.json({ mismatches: mismatches.map(view) });
  });

  router.get('/reconciliation/mismatches/:id', async (req, res) => {
    const mismatch = await db.reconciliationMismatch.findUnique({ where: { id: req.params.id } });
    if (!mismatch) throw notFound(`no mismatch "${req.params.id}"`);
    res.json(view(mismatch));
  });

  router.get('/reconciliation/runs/latest', async (_req, res) => {
    const run = await db.reconciliationRun.findFirst({ orderBy: { startedAt: 'desc' } });
    if (!run) throw notFound('no reconciliation run yet');
    res.json(run);
  });

  router.post('/reconciliation/mismatches/:id/resolve', async (req, res) => {
    const id = req.params.id;
    const decision: ResolveRequest = parseBody(resolveSchema, req.body);
    const mismatch = await db.reconciliationMismatch.findUnique({ where: { id } });
    if (!mismatch) throw notFound(`no mismatch "${id}"`);
    if (mismatch.status !== 'OPEN') {
      throw conflict('already_resolved', `mismatch "${id}" is already ${mismatch.status}`, {
        status: mismatch.status,
        action: mismatch.action,
        resolvedBy: mismatch.resolvedBy,
      });
    }
    const workflowId = mismatchWorkflowId(id);
    const input: MismatchResolutionInput = {
      mismatchId: id,
      kind: mismatch.kind,
      reference: mismatch.reference,
      pspPaymentId: mismatch.pspPaymentId,
      summary: String((mismatch.details as { summary?: unknown }).summary ?? mismatch.kind),
    };
    // Normally the run started the workflow and this only signals it; should it be missing
    // (say, the run was terminated first), the signal starts it with the record's facts.
    await temporal(() =>
      client.workflow.signalWithStart(WORKFLOW_TYPES.mismatchResolution, {
        workflowId,
        taskQueue: deps.taskQueue,
        args: [input],
        signal: resolveMismatchSignal,
        signalArgs: [decision],
        staticSummary: mismatchSummary(input),
        typedSearchAttributes: mismatchStartAttributes(input),
      }),
    );
    res.status(202).json({ mismatchId: id, workflowId, resolution: decision, statusUrl: `/reconciliation/mismatches/${encodeURIComponent(id)}` });
  });

  router.post('/reconciliation/run', async (req, res) => {
    const options: ReconciliationOptions = parseBody(runSchema, req.body);
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
  });

  return router;
}

function view(m: {
  id: string; runId: string; kind: string; reference: string; pspPaymentId: string | null; transactionId: string | null;
  details: unknown; status: string; action: string | null; resolvedBy: string | null; resolutionNote: string | null;
  resolvedAt: Date | null; createdAt: Date; updatedAt: Date;
}) {
  return { ...m, workflowId: mismatchWorkflowId(m.id) };
}
