// The audit log of operator actions, in our own database (`api_audit_log`): who (the verified
// token's subject and roles), what, which run, when, and how it ended. performOperatorAction
// writes the attempt before anything is sent and settles it once; the table's trigger refuses
// deletes and rewrites, so the log only grows.
import type { Db } from '../lib/db.ts';
import type { AuditLog, AuditOutcome } from './operator-action.ts';

/** One row as GET /audit shows it. */
export interface AuditRecord {
  id: string;
  at: string;
  subject: string;
  roles: string[];
  action: string;
  workflowId: string;
  request: Record<string, unknown>;
  outcome: 'attempted' | AuditOutcome;
  code: string | null;
  message: string | null;
  settledAt: string | null;
}

export interface AuditFilter {
  workflowId?: string;
  subject?: string;
  limit: number;
}

export interface AuditStore extends AuditLog {
  /** Newest first. */
  list(filter: AuditFilter): Promise<AuditRecord[]>;
}

export function createAuditLog(db: Db): AuditStore {
  return {
    async attempted(entry) {
      const row = await db.auditEntry.create({
        data: {
          subject: entry.subject,
          roles: entry.roles,
          action: entry.action,
          workflowId: entry.workflowId,
          request: entry.request as object,
        },
        select: { id: true },
      });
      return row.id;
    },

    async settled(id, outcome, refusal) {
      // `outcome: attempted` in the filter: a row is settled once, a second settle is a no-op
      await db.auditEntry.updateMany({
        where: { id: BigInt(id), outcome: 'attempted' },
        data: { outcome, code: refusal?.code ?? null, message: refusal?.message ?? null, settledAt: new Date() },
      });
    },

    async list({ workflowId, subject, limit }) {
      const rows = await db.auditEntry.findMany({
        where: { ...(workflowId ? { workflowId } : {}), ...(subject ? { subject } : {}) },
        orderBy: [{ at: 'desc' }, { id: 'desc' }],
        take: limit,
      });
      return rows.map((row) => ({
        id: row.id.toString(),
        at: row.at.toISOString(),
        subject: row.subject,
        roles: Array.isArray(row.roles) ? row.roles.filter((r): r is string => typeof r === 'string') : [],
        action: row.action,
        workflowId: row.workflowId,
        request: (row.request ?? {}) as Record<string, unknown>,
        outcome: row.outcome,
        code: row.code,
        message: row.message,
        settledAt: row.settledAt?.toISOString() ?? null,
      }));
    },
  };
}
