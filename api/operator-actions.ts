// Which operator actions a run accepts right now, from what the visibility store says about it
// (workflow type + its search attributes), narrowed to what the caller's role permits. Pure, so
// the page never offers a button the workflow or the API would refuse, and the rule can be
// unit-tested without a server. The run itself still decides each action (its update validator).
import { HttpError } from '../lib/http-errors.ts';
import type { OperatorActionName } from '../shared/operations.ts';
import type { Permission, Principal } from '../shared/permissions.ts';
import type { RefundStatus } from '../shared/refunds.ts';
import { WORKFLOW_TYPES } from '../shared/workflow-types.ts';
import type { AuditLog } from './operator-action.ts';

/** The workflows that accept shared/operations.ts retryStep (their slow-retry loops). */
export const RETRY_STEP_TYPES: readonly string[] = [WORKFLOW_TYPES.checkout, WORKFLOW_TYPES.refund];

/** The permission each action's route requires (shared/permissions.ts); the page shows no other. */
export const ACTION_PERMISSIONS: Record<OperatorActionName, Permission> = {
  approveRefund: 'refunds:decide',
  rejectRefund: 'refunds:decide',
  retryRefund: 'refunds:intervene',
  refundManually: 'refunds:intervene',
  abandonRefund: 'refunds:intervene',
  resolveMismatch: 'mismatches:resolve',
  cancelCheckout: 'checkouts:cancel',
  retryStep: 'operations:retry-step',
};

const REFUND_APPROVAL: readonly string[] = ['AWAITING_APPROVAL', 'ESCALATED'] satisfies RefundStatus[];
const REFUND_OPERATOR: readonly string[] = ['NEEDS_OPERATOR'] satisfies RefundStatus[];

export interface RunFacts {
  workflowType: string;
  /** The run's FlowStatus search attribute, in its workflow's own vocabulary. */
  flowStatus: string | null;
  needsAttention: boolean;
  /** Only a running execution accepts anything. */
  running: boolean;
}

/** The actions `run` accepts in its state that a caller holding `permissions` may take. */
export function actionsFor(run: RunFacts, permissions: ReadonlySet<Permission>): OperatorActionName[] {
  return actionsAccepted(run).filter((action) => permissions.has(ACTION_PERMISSIONS[action]));
}

/** What the run accepts in its state, whoever asks. */
function actionsAccepted(run: RunFacts): OperatorActionName[] {
  if (!run.running) return [];
  const actions: OperatorActionName[] = [];
  const status = run.flowStatus ?? '';
  let waitsForDecision = false;
  switch (run.workflowType) {
    case WORKFLOW_TYPES.refund:
      if (REFUND_APPROVAL.includes(status)) actions.push('approveRefund', 'rejectRefund');
      if (REFUND_OPERATOR.includes(status)) actions.push('retryRefund', 'refundManually', 'abandonRefund');
      waitsForDecision = actions.length > 0;
      break;
    case WORKFLOW_TYPES.mismatchResolution:
      if (status === 'OPEN') actions.push('resolveMismatch');
      break;
    case WORKFLOW_TYPES.checkout:
      // Offered until PAID: the checkout's own validator refuses a cancel once capture has started.
      if (status === 'RUNNING') actions.push('cancelCheckout');
      break;
  }
  // A run needing attention while not waiting for a decision is a step in a slow retry loop, or a
  // wait on the provider that has stalled: `retryStep` makes either try again now.
  if (run.needsAttention && !waitsForDecision && RETRY_STEP_TYPES.includes(run.workflowType)) actions.push('retryStep');
  return actions;
}

/**
 * Records an action the API refuses before asking the run, on a fact that never changes (the
 * run's type, a mismatch already resolved), so the audit log holds every refusal, not only the
 * run's own. Returns the refusal for the caller to throw.
 */
export async function auditRefusal(
  audit: AuditLog,
  attempt: { principal: Principal; action: string; workflowId: string; request: Record<string, unknown> },
  refusal: HttpError,
): Promise<HttpError> {
  const { principal } = attempt;
  const id = await audit.attempted({
    subject: principal.subject,
    roles: principal.roles,
    action: attempt.action,
    workflowId: attempt.workflowId,
    request: attempt.request,
  });
  await audit.settled(id, 'refused', { code: refusal.code, message: refusal.message });
  return refusal;
}
