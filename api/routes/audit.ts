// GET /audit: the audit log of operator actions, newest first (api/audit.ts), for operations.
import { z } from 'zod';
import type { AuditStore } from '../audit.ts';
import type { RouteDeclarer } from '../route.ts';

export interface AuditRoutesDeps {
  audit: Pick<AuditStore, 'list'>;
}

const auditQuery = z.object({
  workflowId: z.string().trim().min(1).max(1_000).optional(),
  subject: z.string().trim().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const auditRecord = z.object({
  id: z.string(),
  at: z.string(),
  subject: z.string(),
  roles: z.array(z.string()),
  action: z.string(),
  workflowId: z.string(),
  request: z.record(z.string(), z.unknown()),
  outcome: z.enum(['attempted', 'accepted', 'refused', 'unconfirmed', 'failed']),
  code: z.string().nullable(),
  message: z.string().nullable(),
  settledAt: z.string().nullable(),
});

export function auditRoutes(route: RouteDeclarer, deps: AuditRoutesDeps): void {
  route(
    {
      method: 'get',
      path: '/audit',
      summary: 'Operator actions, newest first: who, what, which run, when, and whether the run accepted it',
      tag: 'audit',
      permissions: ['audit:read'],
      query: auditQuery,
      responses: { 200: { description: 'The entries', schema: z.object({ entries: z.array(auditRecord) }) } },
    },
    async ({ res, query }) => {
      res.json({ entries: await deps.audit.list(query) });
    },
  );
}
