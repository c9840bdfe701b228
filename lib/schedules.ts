// The Temporal Schedules this system relies on, created once and left alone afterwards (an
// operator may pause or retune one in the Web UI; a restart must not undo that).
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { RECONCILIATION_SCHEDULE_ID, reconciliationStartAttributes, reconciliationSummary } from '../shared/reconciliation.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { WORKFLOW_TYPES } from '../shared/workflow-types.ts';

export interface ReconciliationScheduleOptions {
  /** How often a run starts, e.g. '15 minutes'. Each run covers the lookback before its start. */
  every: Duration;
  taskQueue?: string;
}

/** Creates the reconciliation Schedule if it is missing; returns whether it created it. */
export async function ensureReconciliationSchedule(client: Client, options: ReconciliationScheduleOptions): Promise<boolean> {
  try {
    await client.schedule.create({
      scheduleId: RECONCILIATION_SCHEDULE_ID,
      spec: { intervals: [{ every: options.every }] },
      action: {
        type: 'startWorkflow',
        workflowType: WORKFLOW_TYPES.reconciliation,
        // no arguments: each run derives its period from its own start time
        args: [],
        taskQueue: options.taskQueue ?? CHECKOUT_TASK_QUEUE,
        // Temporal appends the action time, so every run has its own id
        workflowId: 'reconciliation',
        staticSummary: reconciliationSummary('schedule'),
        typedSearchAttributes: reconciliationStartAttributes(),
      },
      policies: {
        // a run still going when the next is due: skip the next one, the lookback overlaps anyway
        overlap: ScheduleOverlapPolicy.SKIP,
        catchupWindow: '1 hour',
      },
      memo: { purpose: 'compare the provider settlement report with our payments and orders' },
    });
    return true;
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return false;
    throw err;
  }
}
