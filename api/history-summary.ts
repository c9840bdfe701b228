// A run's event history told as the operations page shows it: one line per business step
// (started, each activity and timer with the summary the workflow gave it, signals, operator
// actions (Updates) with who took them, search attribute changes, the end), leaving out workflow tasks and other bookkeeping. The mapping is
// pure; only reading the summaries and failure messages needs the data converter: both are
// encrypted payloads in the raw history (lib/payload-codec.ts), and a codec may be async.
import { defaultPayloadConverter, type LoadedDataConverter, type Payload, type ProtoFailure } from '@temporalio/common';
import { decodeOptionalFailureToOptionalError, decodeOptionalSinglePayload } from '@temporalio/common/lib/internal-non-workflow/index.js';
import type { temporal } from '@temporalio/proto';
import type { HistoryLine, HistoryLineKind } from '../shared/operations.ts';
import { CheckoutStepKey, FlowStatusKey, NeedsAttentionKey } from '../shared/search-attributes.ts';

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The newest lines kept; a long-running run's story is its end. */
export const HISTORY_LINE_LIMIT = 50;

/** The search attributes an operator reads a run by; the others (order, amount...) do not change. */
const SHOWN_ATTRIBUTES = [FlowStatusKey.name, NeedsAttentionKey.name, CheckoutStepKey.name];

/** What the story quotes from the run, decrypted: step summaries and failure messages, by event id. */
export interface HistoryText {
  /** Each event's `userMetadata.summary` (set on the start, every activity, timer and child). */
  summaries: ReadonlyMap<number, string>;
  /** The innermost message of each failure the story shows (the raw one reads "Encoded failure"). */
  failures: ReadonlyMap<number, string>;
}

/**
 * Decodes what the story quotes. A payload this process cannot read (a key no longer in its ring)
 * costs that one quote, not the whole story.
 */
export async function decodeHistoryText(events: readonly HistoryEvent[], dataConverter: LoadedDataConverter): Promise<HistoryText> {
  const summaries = new Map<number, string>();
  const failures = new Map<number, string>();
  await Promise.all(
    events.map(async (event) => {
      const eventId = eventNumber(event.eventId);
      const payload = event.userMetadata?.summary;
      if (payload) {
        const summary = await decodeOptionalSinglePayload<unknown>(dataConverter, payload as Payload).catch(() => undefined);
        if (typeof summary === 'string' && summary) summaries.set(eventId, summary);
      }
      const failure = eventFailure(event);
      if (failure) {
        const message = await decodeOptionalFailureToOptionalError(dataConverter, failure as ProtoFailure).then(
          (error) => innermostMessage(error),
          (err: unknown) => `(not readable here: ${(err as Error).message})`,
        );
        if (message) failures.set(eventId, message);
      }
    }),
  );
  return { summaries, failures };
}

/** The run's story, oldest first, cut to the last `limit` lines. */
export function historyLines(
  events: readonly HistoryEvent[],
  { summaries, failures }: HistoryText,
  limit = HISTORY_LINE_LIMIT,
): { events: HistoryLine[]; truncated: boolean } {
  /** What a scheduled activity or started timer was, so its end can say which one ended. */
  const steps = new Map<number, string>();
  const timers = new Map<string, string>();
  /** Each accepted update's name, by its accepted event, so its completion can say which one. */
  const updates = new Map<number, string>();
  const lines: HistoryLine[] = [];

  for (const event of events) {
    const eventId = eventNumber(event.eventId);
    const summary = summaries.get(eventId);
    const line = (kind: HistoryLineKind, text: string) => lines.push({ eventId, time: eventTime(event), kind, text });
    const stepOf = (scheduledEventId: unknown) => steps.get(eventNumber(scheduledEventId)) ?? 'activity';
    // decoded when it was an encrypted one; as recorded (histories from before encryption) otherwise
    const failureMessage = failures.get(eventId) ?? innermostMessage(eventFailure(event));
    const failureText = failureMessage ? `: ${failureMessage}` : '';

    if (event.workflowExecutionStartedEventAttributes) {
      const a = event.workflowExecutionStartedEventAttributes;
      line('workflowStarted', `Started ${a.workflowType?.name ?? 'workflow'}${summary ? `: ${summary}` : ''}`);
    } else if (event.activityTaskScheduledEventAttributes) {
      const type = event.activityTaskScheduledEventAttributes.activityType?.name ?? 'activity';
      const step = summary ? `${summary} (${type})` : type;
      steps.set(eventId, step);
      line('activityScheduled', `Scheduled: ${step}`);
    } else if (event.activityTaskCompletedEventAttributes) {
      line('activityCompleted', `Completed: ${stepOf(event.activityTaskCompletedEventAttributes.scheduledEventId)}`);
    } else if (event.activityTaskFailedEventAttributes) {
      const a = event.activityTaskFailedEventAttributes;
      line('activityFailed', `Failed: ${stepOf(a.scheduledEventId)}${failureText}`);
    } else if (event.activityTaskTimedOutEventAttributes) {
      const a = event.activityTaskTimedOutEventAttributes;
      line('activityTimedOut', `Timed out: ${stepOf(a.scheduledEventId)}${failureText}`);
    } else if (event.activityTaskCanceledEventAttributes) {
      line('activityCanceled', `Cancelled: ${stepOf(event.activityTaskCanceledEventAttributes.scheduledEventId)}`);
    } else if (event.timerStartedEventAttributes) {
      const a = event.timerStartedEventAttributes;
      const timer = summary ?? `timer for ${durationText(a.startToFireTimeout)}`;
      timers.set(a.timerId ?? '', timer);
      line('timerStarted', `Waiting: ${timer}`);
    } else if (event.timerFiredEventAttributes) {
      line('timerFired', `Time is up: ${timers.get(event.timerFiredEventAttributes.timerId ?? '') ?? 'timer'}`);
    } else if (event.timerCanceledEventAttributes) {
      line('timerCanceled', `No longer waiting: ${timers.get(event.timerCanceledEventAttributes.timerId ?? '') ?? 'timer'}`);
    } else if (event.workflowExecutionSignaledEventAttributes) {
      // the name only: a signal's arguments may carry an operator's free-text notes
      line('signalReceived', `Signal received: ${event.workflowExecutionSignaledEventAttributes.signalName ?? 'unnamed'}`);
    } else if (event.workflowExecutionUpdateAcceptedEventAttributes) {
      // the name and the caller's identity (`api:<subject>` from the API), never the arguments
      const request = event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      const name = request?.input?.name ?? 'unnamed';
      updates.set(eventId, name);
      const identity = request?.meta?.identity;
      line('updateAccepted', `Update accepted: ${name}${identity ? ` by ${identity}` : ''}`);
    } else if (event.workflowExecutionUpdateCompletedEventAttributes) {
      const a = event.workflowExecutionUpdateCompletedEventAttributes;
      const name = updates.get(eventNumber(a.acceptedEventId)) ?? 'update';
      if (a.outcome?.failure) line('updateFailed', `Update failed: ${name}${failureText}`);
      else line('updateCompleted', `Update completed: ${name}`);
    } else if (event.childWorkflowExecutionStartedEventAttributes) {
      const a = event.childWorkflowExecutionStartedEventAttributes;
      line('childWorkflowStarted', `Started child ${a.workflowType?.name ?? 'workflow'} ${a.workflowExecution?.workflowId ?? ''}`.trimEnd());
    } else if (event.childWorkflowExecutionCompletedEventAttributes) {
      const a = event.childWorkflowExecutionCompletedEventAttributes;
      line('childWorkflowCompleted', `Child ${a.workflowType?.name ?? 'workflow'} ${a.workflowExecution?.workflowId ?? ''} completed`);
    } else if (event.childWorkflowExecutionFailedEventAttributes) {
      const a = event.childWorkflowExecutionFailedEventAttributes;
      line('childWorkflowFailed', `Child ${a.workflowType?.name ?? 'workflow'} ${a.workflowExecution?.workflowId ?? ''} failed${failureText}`);
    } else if (event.upsertWorkflowSearchAttributesEventAttributes) {
      const changes = shownAttributes(event.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields);
      if (changes) line('searchAttributesUpserted', `Now ${changes}`);
    } else if (event.workflowExecutionCompletedEventAttributes) {
      line('workflowCompleted', 'Workflow completed');
    } else if (event.workflowExecutionFailedEventAttributes) {
      line('workflowFailed', `Workflow failed${failureText}`);
    } else if (event.workflowExecutionCanceledEventAttributes) {
      line('workflowCanceled', 'Workflow cancelled');
    } else if (event.workflowExecutionTerminatedEventAttributes) {
      const reason = event.workflowExecutionTerminatedEventAttributes.reason;
      line('workflowTerminated', `Workflow terminated${reason ? `: ${reason}` : ''}`);
    } else if (event.workflowExecutionTimedOutEventAttributes) {
      line('workflowTimedOut', 'Workflow timed out');
    } else if (event.workflowExecutionContinuedAsNewEventAttributes) {
      line('workflowContinuedAsNew', 'Continued as a new run');
    }
  }
  return lines.length > limit ? { events: lines.slice(-limit), truncated: true } : { events: lines, truncated: false };
}

/** Event ids and timestamps' seconds are int64 (a Long, or a number/string once read from JSON). */
function eventNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  const long = value as { toNumber?: () => number };
  return typeof long.toNumber === 'function' ? long.toNumber() : Number(value);
}

function eventTime(event: HistoryEvent): string {
  const seconds = eventNumber(event.eventTime?.seconds);
  const nanos = event.eventTime?.nanos ?? 0;
  return new Date(seconds * 1_000 + Math.floor(nanos / 1_000_000)).toISOString();
}

function durationText(duration: { seconds?: unknown; nanos?: number | null } | null | undefined): string {
  const seconds = eventNumber(duration?.seconds) + (duration?.nanos ?? 0) / 1e9;
  return `${seconds} s`;
}

/** The failure an event carries, for the events whose line quotes it. */
function eventFailure(event: HistoryEvent): temporal.api.failure.v1.IFailure | null | undefined {
  return (
    event.activityTaskFailedEventAttributes?.failure ??
    event.activityTaskTimedOutEventAttributes?.failure ??
    event.workflowExecutionUpdateCompletedEventAttributes?.outcome?.failure ??
    event.childWorkflowExecutionFailedEventAttributes?.failure ??
    event.workflowExecutionFailedEventAttributes?.failure
  );
}

/** The innermost cause's message (an activity's own error, not the SDK's wrapper), of a decoded error or a raw failure. */
function innermostMessage(failure: { message?: string | null; cause?: unknown } | null | undefined): string | undefined {
  let f = failure;
  while (f?.cause) f = f.cause as typeof f;
  return f?.message || undefined;
}

/** `FlowStatus = AWAITING_APPROVAL, NeedsAttention = true`, or '' when none of them changed. */
function shownAttributes(fields: Record<string, temporal.api.common.v1.IPayload> | null | undefined): string {
  if (!fields) return '';
  return SHOWN_ATTRIBUTES.filter((name) => fields[name])
    .map((name) => {
      // search attributes are always plain JSON payloads (never through a codec)
      let value: unknown;
      try {
        value = defaultPayloadConverter.fromPayload(fields[name] as Payload);
      } catch {
        value = '?';
      }
      return `${name} = ${value === null || value === undefined ? '(unset)' : Array.isArray(value) ? value.join(', ') : String(value)}`;
    })
    .join(', ');
}
