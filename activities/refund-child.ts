// Where a Refund workflow that some other execution started stands. A workflow that asks for a
// refund starts it as a child and waits for it; when the refund's id is already taken (a second
// reconciliation run, an operator asking again) it must report that refund instead of starting
// another, and only a client can read a workflow that is not its own child.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { refundStateQuery, type RefundState } from '../shared/refunds.ts';

export interface RefundWorkflowOutcome {
  /** RUNNING; COMPLETED (then `state` is its result); FAILED, TERMINATED, ... (start it again); NOT_FOUND. */
  execution: string;
  /** The result once COMPLETED; the live `state` query while RUNNING, if a worker answered. */
  state: RefundState | null;
}

export function refundChildActivities() {
  return {
    async readRefundWorkflow({ workflowId }: { workflowId: string }): Promise<RefundWorkflowOutcome> {
      const handle = Context.current().client.workflow.getHandle(workflowId);
      let execution: string;
      try {
        execution = (await handle.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { execution: 'NOT_FOUND', state: null };
        throw err;
      }
      if (execution === 'COMPLETED') return { execution, state: (await handle.result()) as RefundState };
      if (execution !== 'RUNNING') return { execution, state: null };
      const state = await handle.query(refundStateQuery).catch(() => null);
      return { execution, state };
    },
  };
}

export type RefundChildActivities = ReturnType<typeof refundChildActivities>;
