// Every operator action the API forwards (approve a refund, cancel a checkout, resolve a
// mismatch, pause a distribution, retry a step, ...) goes through `performOperatorAction`: it
// is written to the audit log as attempted, sent to the run as a Temporal Update under the
// caller's identity, and the log row gets its outcome. The run's validator decides atomically
// (no describe-then-signal race): accepted → the run's new state; refused → 409 with the run's
// own reason, and nothing in its history.
import {
  WorkflowClient,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { UpdateDefinition } from '@temporalio/common';
import { conflict, HttpError, unavailable } from '../lib/http-errors.ts';
import type { Principal } from '../shared/permissions.ts';
import { callTemporal } from './temporal.ts';

export type AuditOutcome = 'accepted' | 'refused' | 'unconfirmed' | 'failed';

/** One operator action as the audit log keeps it. */
export interface AuditEntry {
  /** The verified token's subject. */
  subject: string;
  roles: string[];
  /** The action's name as the API calls it: `refund.approve`, `checkout.cancel`, ... */
  action: string;
  workflowId: string;
  /** The action's arguments (never a secret). */
  request: Record<string, unknown>;
}

export interface AuditLog {
  /** Writes the attempt before anything is sent; returns its id. Fails → the action is not sent. */
  attempted(entry: AuditEntry): Promise<bigint | number>;
  /** Records how it ended: the refusal's code and message, or null. */
  settled(id: bigint | number, outcome: AuditOutcome, refusal: { code: string; message: string } | null): Promise<void>;
}

export interface OperatorActionDeps {
  client: Client;
  audit: AuditLog;
  /** Deadline for the update round trip: the run's worker must validate and apply it. */
  temporalTimeoutMs: number;
}

export interface OperatorAction<Ret, Arg> {
  principal: Principal;
  /** Audit name, e.g. `refund.approve`. */
  action: string;
  workflowId: string;
  update: UpdateDefinition<Ret, [Arg]>;
  arg: Arg;
}

/** Sends the action as an Update under the caller's identity; the run's answer, or an HttpError. */
export async function performOperatorAction<Ret, Arg extends object>(deps: OperatorActionDeps, action: OperatorAction<Ret, Arg>): Promise<Ret> {
  const { principal } = action;
  const auditId = await deps.audit.attempted({
    subject: principal.subject,
    roles: principal.roles,
    action: action.action,
    workflowId: action.workflowId,
    request: { ...action.arg } as Record<string, unknown>,
  });
  try {
    const result = await callTemporal(deps.client, deps.temporalTimeoutMs, () =>
      asCaller(deps.client, principal)
        .getHandle(action.workflowId)
        .executeUpdate(action.update, { args: [action.arg] })
        .catch((err: unknown) => {
          // Answered here: callTemporal would read its DEADLINE_EXCEEDED cause as "Temporal is down",
          // while Temporal took the call and only no worker confirmed it.
          if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) throw toHttpAnswer(err, action.workflowId);
          throw err;
        }),
    );
    await deps.audit.settled(auditId, 'accepted', null);
    return result;
  } catch (err) {
    const answer = toHttpAnswer(err, action.workflowId);
    const outcome: AuditOutcome = answer.status === 409 ? 'refused' : answer.code === 'action_unconfirmed' ? 'unconfirmed' : 'failed';
    await deps.audit.settled(auditId, outcome, { code: answer.code, message: answer.message }).catch(() => {});
    throw answer;
  }
}

/**
 * A workflow client whose identity names the person: Temporal records it with the update in
 * the run's history, so the Web UI shows who acted. Clients are cheap; the connection is shared.
 */
function asCaller(client: Client, principal: Principal): WorkflowClient {
  const { connection, namespace, dataConverter, interceptors } = client.workflow.options;
  return new WorkflowClient({ connection, namespace, dataConverter, interceptors, identity: `api:${principal.subject}` });
}

function toHttpAnswer(err: unknown, workflowId: string): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'action_refused';
    return conflict(code, cause?.message || 'the run refused the action');
  }
  if (err instanceof WorkflowNotFoundError) {
    return conflict('already_completed', `run "${workflowId}" has already finished; it accepts no more actions`);
  }
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
    // The server may still hold the update and deliver it when a worker comes back: "not confirmed", not "not done".
    return unavailable('action_unconfirmed', 'no worker confirmed the action in time; it may still be applied when a worker picks it up');
  }
  throw err;
}
