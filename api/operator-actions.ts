// Which operator actions a run accepts right now, from what the visibility store says about it
// (workflow type + its search attributes). Pure, so the page never offers a button the
// workflow would refuse, and the rule can be unit-tested without a server. The routes that
// carry an action out still check the run's live state themselves.
import type { OperatorActionName } from '../shared/operations.ts';
import type { RefundStatus } from '../shared/refunds.ts';
import { WORKFLOW_TYPES } from '../shared/workflow-types.ts';


/** The workflows that accept shared/operations.ts retryStepSignal (their slow-retry loops). */
export const RETRY_STEP_TYPES: readonly string[] = [WORKFLOW_TYPES.checkout, WORKFLOW_TYPES.refund];

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

export function actionsFor(run: RunFacts): OperatorActionName[] {
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
      // Offered until PAID although a captured checkout ignores `cancel` (README: "After capture"):
      // visibility cannot tell the two apart, and the checkout stays correct either way.
      if (status === 'RUNNING') actions.push('cancelCheckout');
      break;
  }
  // A run needing attention while not waiting for a decision is a step in a slow retry loop, or a
  // wait on the provider that has stalled: `retryStep` makes either try again now.
  if (run.needsAttention && !waitsForDecision && RETRY_STEP_TYPES.includes(run.workflowType)) actions.push('retryStep');
  return actions;
}
