// Where a Refund workflow that some other execution started stands. A workflow that asks for a
// refund starts it as a child and waits for it; when the refund's id is already taken (a second
// reconciliation run, an operator asking again) it must report that refund instead of starting
// another, and only a client can read a workflow that is not its own child. A refund under that
// id that is not the one asked for (another order, requester or amount) is refused as foreign:
// taking it for our own would count someone else's refund as our money back.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { foreignRefund, refundStateQuery, type RefundInput, type RefundState } from '../shared/refunds.ts';

/** The failure type of a refund found under our id that is not ours. */
export const FOREIGN_REFUND = 'foreign_refund';

export interface RefundWorkflowOutcome {
  /** RUNNING; COMPLETED (then `state` is its result); FAILED, TERMINATED, ... (start it again); NOT_FOUND. */
  execution: string;
  /** The result once COMPLETED; the live `state` query while RUNNING, if a worker answered. */
  state: RefundState | null;
}

export interface ReadRefundWorkflowInput {
  workflowId: string;
  /** What the caller asked for under this id; a refund that differs fails with FOREIGN_REFUND (absent in runs recorded before). */
  expected?: Pick<RefundInput, 'orderId' | 'amount' | 'requestedBy'>;
}

export function refundChildActivities() {
  return {
    async readRefundWorkflow({ workflowId, expected }: ReadRefundWorkflowInput): Promise<RefundWorkflowOutcome> {
      const handle = Context.current().client.workflow.getHandle(workflowId);
      let execution: string;
      try {
        execution = (await handle.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { execution: 'NOT_FOUND', state: null };
        throw err;
      }
      let state: RefundState | null = null;
      if (execution === 'COMPLETED') state = (await handle.result()) as RefundState;
      else if (execution === 'RUNNING') state = await handle.query(refundStateQuery).catch(() => null);
      const foreign = state && expected ? foreignRefund(state, expected) : null;
      if (foreign !== null) {
        throw ApplicationFailure.nonRetryable(
          `refund ${workflowId} is not this request's refund (${foreign}); the money is not back — an operator must look`,
          FOREIGN_REFUND,
        );
      }
      return { execution, state };
    },
  };
}

export type RefundChildActivities = ReturnType<typeof refundChildActivities>;
