// Waiting for runs without asking a worker. GET /checkouts/:id and GET /refunds/:id answer a
// running flow with its `state` query, which a worker must answer (replaying the history when the
// run is not in its cache): polled for every run every few seconds, that load would crowd out
// the work itself on a small machine. So the drivers act and read results through the API, and
// wait here, on what the server alone knows: whether the run is closed, and its FlowStatus.
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FlowStatusKey } from '../../shared/search-attributes.ts';
import { sleep } from './api.ts';

export interface RunStatus {
  /** RUNNING, COMPLETED, FAILED, ... as Temporal names the execution's status. */
  execution: string;
  /** The flow's own status as it last published it (FlowStatus search attribute). */
  flowStatus: string | undefined;
}

export async function runStatus(client: Client, workflowId: string): Promise<RunStatus | null> {
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    return { execution: description.status.name, flowStatus: description.typedSearchAttributes.get(FlowStatusKey) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/**
 * Polls until the run has closed, or until `ready` says it is worth acting on; false at the
 * deadline. Errors (the dev server restarting) are waited out like a run that is still going.
 */
export async function waitForRun(
  client: Client,
  workflowId: string,
  deadline: number,
  { everyMs = 2_000, ready = () => false }: { everyMs?: number; ready?: (status: RunStatus) => boolean } = {},
): Promise<RunStatus | null> {
  for (;;) {
    const status = await runStatus(client, workflowId).catch(() => undefined);
    if (status && (status.execution !== 'RUNNING' || ready(status))) return status;
    if (Date.now() > deadline) return status ?? null;
    await sleep(everyMs);
  }
}

/**
 * Waits until the run has closed (true), or the deadline passes (false), on a long poll the
 * server answers when the run closes: cheaper than asking every few seconds for each run. Each
 * poll carries its own deadline, so none is left waiting once the harness has moved on.
 */
export async function waitForClose(client: Client, workflowId: string, deadline: number): Promise<boolean> {
  const handle = client.workflow.getHandle(workflowId);
  for (;;) {
    if (Date.now() >= deadline) return false;
    try {
      await client.connection.withDeadline(Math.min(deadline, Date.now() + 60_000), () => handle.result());
      return true;
    } catch (err) {
      // ended without a result (failed, terminated): closed all the same
      if (err instanceof WorkflowFailedError) return true;
      // the poll's deadline, or the server restarting: ask again
      await sleep(1_000);
    }
  }
}
