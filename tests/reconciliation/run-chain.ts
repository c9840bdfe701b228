// What the reconciliation tests read from Temporal's own records: every run of a reconciliation
// (it continues as new as its history grows) and the largest payload each run's history holds,
// so a test can bound both instead of trusting the workflow's own counts.
import type { Client } from '@temporalio/client';
import type { History } from '../support/histories.ts';

export interface RunRecord {
  runId: string;
  events: number;
  /** The largest set of payloads one event carries (a workflow's input, an activity's result…), in bytes as stored. */
  largestPayloadBytes: number;
  /** The event that carries it, e.g. `activityTaskCompletedEventAttributes`. */
  largestPayloadIn: string;
}

/** Every run of the workflow from `firstRunId` on, following each continue-as-new. */
export async function runChain(client: Client, workflowId: string, firstRunId: string): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (let runId: string | null | undefined = firstRunId; runId; ) {
    const history: History = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    let largest = { bytes: 0, in: '' };
    for (const event of events) {
      for (const [field, attributes] of Object.entries(event)) {
        if (!field.endsWith('Attributes') || !attributes) continue;
        const bytes = largestPayloads(attributes);
        if (bytes > largest.bytes) largest = { bytes, in: field };
      }
    }
    runs.push({ runId, events: events.length, largestPayloadBytes: largest.bytes, largestPayloadIn: largest.in });
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  }
  return runs;
}

/** The largest `{ payloads: [...] }` inside `value`: its data and metadata bytes. */
function largestPayloads(value: unknown): number {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return 0;
  let largest = 0;
  const payloads = (value as { payloads?: unknown }).payloads;
  if (Array.isArray(payloads)) {
    largest = payloads.reduce((sum: number, p: { data?: Uint8Array | null; metadata?: Record<string, Uint8Array> | null }) => {
      const metadata = Object.values(p.metadata ?? {}).reduce((m, bytes) => m + bytes.length, 0);
      return sum + (p.data?.length ?? 0) + metadata;
    }, 0);
  }
  for (const inner of Object.values(value)) largest = Math.max(largest, largestPayloads(inner));
  return largest;
}
