// The one logger: JSON lines on stdout, `{ time, level, msg, service, ...context, ...fields, traceId, spanId }`.
// Every line names the workflow, run and order it is about (the log context, set per HTTP request
// and per activity) and the trace it belongs to (the active OpenTelemetry span), so a line found in
// the logs leads to the trace and the workflow in the Web UI, and back.
import { context, createContextKey, trace, type Context } from '@opentelemetry/api';
import type { LogEntry, LogLevel as SdkLogLevel } from '@temporalio/worker';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What a line is about; the HTTP middleware and the activity interceptor set it. */
export interface LogContext {
  workflowId?: string;
  runId?: string;
  orderId?: string;
}

/** Headers activities/http.ts sends so a service's log lines name the workflow, run and order they serve. */
export const LOG_CONTEXT_HEADERS = { workflowId: 'x-workflow-id', runId: 'x-run-id', orderId: 'x-order-id' } as const;

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Where finished lines go: stdout, or a test's collector. */
export type LogSink = (line: string) => void;

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// Kept in the OpenTelemetry context, which lib/telemetry.ts carries across awaits (AsyncLocalStorage)
// and which the HTTP middleware binds to the request's stream events, where body parsers run.
const LOG_CONTEXT_KEY = createContextKey('commerce.log-context');
let sink: LogSink = (line) => process.stdout.write(`${line}\n`);
/** Debug lines are for a developer's local edits; they do not reach the output. */
const minimumLevel: LogLevel = 'info';

/** Runs `fn` with `fields` added to every line logged inside it (also across awaits). */
export function withLogContext<T>(fields: LogContext, fn: () => T): T {
  return context.with(contextWithLogFields(context.active(), fields), fn);
}

/** `base` plus `fields` in its log context (for code that enters the context itself). */
export function contextWithLogFields(base: Context, fields: LogContext): Context {
  const current = (base.getValue(LOG_CONTEXT_KEY) as LogContext | undefined) ?? {};
  return base.setValue(LOG_CONTEXT_KEY, { ...current, ...definedOnly(fields) });
}

export function currentLogContext(): LogContext {
  return (context.active().getValue(LOG_CONTEXT_KEY) as LogContext | undefined) ?? {};
}

/** Replaces the sink (tests); returns a function that puts the previous one back. */
export function setLogSink(next: LogSink): () => void {
  const previous = sink;
  sink = next;
  return () => {
    sink = previous;
  };
}

export function createLogger(service: string): Logger {
  const at = (level: LogLevel) => (msg: string, fields: LogFields = {}) => writeLine(level, service, msg, fields);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * Writes one line. Exported for the worker, whose SDK logger already carries workflow and
 * activity attributes (and trace ids from the OpenTelemetry interceptors) in `fields`.
 */
export function writeLine(level: LogLevel, service: string, msg: string, fields: LogFields): void {
  if (SEVERITY[level] < SEVERITY[minimumLevel]) return;
  const span = trace.getActiveSpan()?.spanContext();
  const line: LogFields = {
    time: new Date().toISOString(),
    level,
    msg,
    service,
    ...currentLogContext(),
    ...serializable(fields),
  };
  // The active span wins only when the caller did not name a trace (the worker's SDK entries do).
  if (span && line.traceId === undefined) {
    line.traceId = span.traceId;
    line.spanId = span.spanId;
  }
  sink(safeStringify(line));
}

const SDK_LEVELS: Record<SdkLogLevel, LogLevel> = { TRACE: 'debug', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * For `new DefaultLogger(level, sdkLogFunction('worker'))`: the Temporal SDK's entries as our lines.
 * Workflow and activity entries carry workflowId, runId (activities: workflowRunId), orderId (our
 * interceptors) and the OpenTelemetry interceptors' `trace_id`/`span_id`, renamed to ours.
 */
export function sdkLogFunction(service: string): (entry: LogEntry) => void {
  return ({ level, message, meta = {} }) => {
    const { trace_id: traceId, span_id: spanId, trace_flags: _traceFlags, workflowRunId, ...fields } = meta;
    // activity entries name the run `workflowRunId`, workflow entries `runId`: one name in our lines
    if (workflowRunId !== undefined) fields.runId = workflowRunId;
    writeLine(SDK_LEVELS[level], service, message, traceId === undefined ? fields : { ...fields, traceId, spanId });
  };
}

function definedOnly(context: LogContext): LogContext {
  return Object.fromEntries(Object.entries(context).filter(([, v]) => v !== undefined && v !== '')) as LogContext;
}

/**
 * Errors keep their message and stack (JSON.stringify would make them `{}`), and their causes'
 * name, code and message: a wrapper's ("Failed to get Workflow execution history") says little.
 */
function serializable(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? { name: value.name, message: value.message, stack: value.stack, ...causesOf(value) } : value;
  }
  return out;
}

function causesOf(err: Error): { causes?: { name: string; code?: unknown; message: string }[] } {
  const causes: { name: string; code?: unknown; message: string }[] = [];
  for (let e = err.cause; e instanceof Error && causes.length < 5; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    causes.push({ name: e.name, ...(code === undefined ? {} : { code }), message: e.message });
  }
  return causes.length > 0 ? { causes } : {};
}

function safeStringify(line: LogFields): string {
  try {
    return JSON.stringify(line, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  } catch {
    // a circular structure must not cost us the line itself
    return JSON.stringify({ time: line.time, level: line.level, msg: line.msg, service: line.service, unserializableFields: true });
  }
}
