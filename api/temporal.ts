// How the API talks to Temporal: every call runs under a deadline (the SDK
// would otherwise retry an unreachable frontend for ~20 s), and "cannot reach
// Temporal" becomes a 503 the client can retry, instead of a 500.
import {
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type Client,
  type ConnectionOptions,
} from '@temporalio/client';
import { HttpError, unavailable } from '../lib/http-errors.ts';
import { createLogger } from '../lib/logger.ts';

const log = createLogger('api');

type GrpcInterceptor = NonNullable<ConnectionOptions['interceptors']>[number];

// gRPC status codes that mean the frontend could not be reached or did not answer in time.
// grpc-js sometimes reports an expired deadline as CANCELLED ("Call cancelled"): the API
// never cancels a call itself, so CANCELLED after the deadline is read as a timeout.
const GRPC_CANCELLED = 1;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;
export const GRPC_INVALID_ARGUMENT = 3;

function grpcCodes(err: unknown): number[] {
  const codes: number[] = [];
  const seen = new Set<unknown>();
  for (let e = err; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') codes.push(code);
  }
  return codes;
}

/** True when `err` or one of its causes carries this gRPC status code. */
export function hasGrpcCode(err: unknown, code: number): boolean {
  return grpcCodes(err).includes(code);
}

/** True when `err` (or its cause) is a gRPC "unavailable", or a timeout of a call whose deadline was `deadline`. */
export function isTemporalUnavailable(err: unknown, deadline: number): boolean {
  return hasGrpcCode(err, GRPC_UNAVAILABLE) || isTimeout(err, deadline);
}

/** True when `err` is how a call that ran into its `deadline` (ms since epoch) fails. */
export function isTimeout(err: unknown, deadline: number): boolean {
  const codes = grpcCodes(err);
  return codes.includes(GRPC_DEADLINE_EXCEEDED) || (codes.includes(GRPC_CANCELLED) && Date.now() >= deadline);
}

export function temporalUnavailable(err: unknown, deadline: number, timeoutMs: number): HttpError {
  // The cause (addresses, socket errors) goes to our log, never to the caller.
  const timedOut = isTimeout(err, deadline);
  log.warn('Temporal call failed', { reason: timedOut ? `no answer within ${timeoutMs} ms` : errorMessage(err) });
  const why = timedOut ? `no answer within ${timeoutMs} ms` : 'not reachable';
  return unavailable('temporal_unavailable', `Temporal is unavailable (${why}); retry later`);
}

/** True when Temporal turned the call away for load ("Workflow is busy": too many long polls on one run, a rate limit). */
export function isTemporalBusy(err: unknown): boolean {
  return hasGrpcCode(err, GRPC_RESOURCE_EXHAUSTED);
}

/**
 * The 503 for a Temporal call that failed because Temporal could not be reached, did not answer
 * or was too busy to (gRPC UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED anywhere in its
 * causes); null for anything else.
 */
export function asTemporalUnavailable(err: unknown): HttpError | null {
  if (err instanceof HttpError) return null;
  const busy = isTemporalBusy(err);
  if (!busy && !hasGrpcCode(err, GRPC_UNAVAILABLE) && !hasGrpcCode(err, GRPC_DEADLINE_EXCEEDED)) return null;
  log.warn('Temporal call failed', { reason: errorMessage(err) });
  return unavailable('temporal_unavailable', `Temporal is unavailable (${busy ? 'busy' : 'not reachable'}); retry later`);
}

/** The innermost message: the SDK wraps the gRPC error ("Failed to start Workflow" ← "14 UNAVAILABLE: ..."). */
export function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const inner = err.cause instanceof Error ? err.cause : err;
  // AggregateError (e.g. a refused connection tried on IPv4 and IPv6) has an empty message
  return inner.message || String((inner as { code?: unknown }).code ?? inner.name);
}

/**
 * Runs `fn` with every Temporal request inside it bounded by `timeoutMs`; an
 * unreachable or unresponsive Temporal is rethrown as 503 `temporal_unavailable`.
 */
export async function callTemporal<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  try {
    return await client.connection.withDeadline(deadline, fn);
  } catch (err) {
    if (isTemporalUnavailable(err, deadline)) throw temporalUnavailable(err, deadline, timeoutMs);
    throw err;
  }
}

/** Link to one run in the Temporal Web UI, or null when no UI is configured. */
export function webUiUrl(
  uiBaseUrl: string | undefined,
  namespace: string,
  workflowId: string,
  runId: string,
): string | null {
  if (!uiBaseUrl) return null;
  const base = uiBaseUrl.replace(/\/+$/, '');
  const segments = [namespace, workflowId, runId].map(encodeURIComponent);
  return `${base}/namespaces/${segments[0]}/workflows/${segments[1]}/${segments[2]}/history`;
}

/**
 * The API's connection to Temporal. Lazy: gRPC (re)connects on demand, so a Temporal that
 * starts later, or restarts, is picked up without restarting the API.
 */
export function connectTemporal(address: string): Connection {
  return Connection.lazy({ address, interceptors: [retryWithinDeadline()] });
}

/**
 * The SDK's default gRPC retries (UNAVAILABLE and friends, with backoff), except that no
 * retry is scheduled past the call's deadline: the caller has been answered by then, and
 * a stray retry timer would otherwise fire on a connection that may already be closed.
 */
function retryWithinDeadline(): GrpcInterceptor {
  const defaults = defaultGrpcRetryOptions();
  return (options, nextCall) => {
    const deadline = options.deadline === undefined ? Infinity : new Date(options.deadline).getTime();
    let nextDelayMs = 0;
    const retry = makeGrpcRetryInterceptor({
      // the interceptor asks "retry?" first, then "after how long?", for the same attempt
      retryableDecider(attempt, status) {
        nextDelayMs = defaults.delayFunction(attempt, status);
        return defaults.retryableDecider(attempt, status) && Date.now() + nextDelayMs < deadline;
      },
      delayFunction: () => nextDelayMs,
    });
    return retry(options, nextCall);
  };
}

/** The execution with this id (its latest run, or the given one); null for an unknown id. */
export async function describeWorkflow(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<WorkflowExecutionDescription | null> {
  try {
    return await client.workflow.getHandle(workflowId, runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The execution with this id if it is a workflow of `type`; null for an unknown id or another type. */
export async function describeWorkflowOfType(
  client: Client,
  workflowId: string,
  type: string,
): Promise<WorkflowExecutionDescription | null> {
  const description = await describeWorkflow(client, workflowId);
  return description?.type === type ? description : null;
}

/**
 * A query is answered by a worker, so it gets its own short deadline: with no worker polling,
 * Temporal would hold it until the deadline. Returns null when no worker answered in time.
 */
export async function queryWithin<T>(client: Client, timeoutMs: number, query: () => Promise<T>): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  try {
    return await client.connection.withDeadline(deadline, query);
  } catch (err) {
    if (!isTimeout(err, deadline)) throw err;
    return null;
  }
}
