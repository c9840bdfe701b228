// The one error-to-status mapping, shared by the downstream services and the API.
// Code throws an HttpError for every answer that is not a success; anything else
// that escapes a handler is classified here (database down → 503, malformed JSON
// → 400, the rest → 500) and rendered as `{ error: { code, message, field?, ... } }`.
import type { ErrorRequestHandler, Response } from 'express';
import type { z } from 'zod';
import { createLogger } from './logger.ts';

const log = createLogger('http');

export type ErrorDetails = Record<string, unknown>;

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly details: ErrorDetails | undefined;
  private readonly retryLater: boolean;

  constructor(
    status: number,
    code: string,
    message: string,
    opts: { field?: string; details?: ErrorDetails; retryable?: boolean } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
    this.retryLater = opts.retryable ?? status >= 500;
  }

  /**
   * 5xx answers are the caller's cue to retry the same request later; so is a 4xx
   * created with `retryable` ("not yet", e.g. payment_processing). Neither is
   * stored under an Idempotency-Key, so the retry runs again.
   */
  get retryable(): boolean {
    return this.retryLater;
  }

  toBody(): { error: { code: string; message: string; field?: string } & ErrorDetails } {
    // details never overwrite the three fields every client relies on
    const { code: _c, message: _m, field: _f, ...details } = this.details ?? {};
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field === undefined ? {} : { field: this.field }),
        ...details,
      },
    };
  }
}

export function invalidRequest(message: string, field?: string, details?: ErrorDetails): HttpError {
  return new HttpError(400, 'invalid_request', message, { field, details });
}

/** 401 with `WWW-Authenticate: Bearer` (set by sendError); the message never says what was wrong with the credential. */
export function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message);
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'not_found', message);
}

/** A business refusal; `code` names the rule (`out_of_stock`, `illegal_transition`, ...). */
export function conflict(code: string, message: string, details?: ErrorDetails): HttpError {
  return new HttpError(409, code, message, { details });
}

/** A refusal that only holds for now (`payment_processing`): the same request may succeed later. */
export function notYet(code: string, message: string, details?: ErrorDetails): HttpError {
  return new HttpError(409, code, message, { details, retryable: true });
}

/** A retryable failure of something we depend on (`database_unavailable`, `psp_unavailable`, ...). */
export function unavailable(code: string, message: string, details?: ErrorDetails): HttpError {
  return new HttpError(503, code, message, { details });
}

/** Validates `value` against `schema`; a failure is a 400 naming the first bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    field: issue.path.map(String).join('.'),
    message: issue.message,
  }));
  const first = issues[0]!;
  const where = first.field || 'body';
  throw invalidRequest(`${where}: ${first.message}`, first.field || undefined, {
    fields: issues.map((i) => i.field).filter(Boolean),
  });
}

/** `parse` for a request body; a request without a JSON body is validated as `{}`. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  return parse(schema, body ?? {});
}

// Error codes that mean "the database could not be reached", from Prisma
// (P1001 unreachable, P1002 timeout, P1017 closed, P2024 pool timeout, P2028
// transaction could not start/expired), the driver adapter, PostgreSQL SQLSTATE
// classes 08 (connection), 57P (shutdown) and 53 (out of resources), and Node sockets.
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);
const ADAPTER_UNAVAILABLE = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TlsConnectionError']);
const SOCKET_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
// Serialization failures and deadlocks: the transaction did nothing and a retry will do.
const PG_RETRYABLE = /^(08|57P|53|40001|40P01)/;

/** True when `err` (or anything in its cause chain) says the database is unreachable or busy. */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const o = e as Record<string, unknown>;
    const name = typeof o.name === 'string' ? o.name : '';
    const code = typeof o.code === 'string' ? o.code : '';
    const kind = typeof o.kind === 'string' ? o.kind : '';
    if (name === 'PrismaClientInitializationError') return true;
    if (PRISMA_UNAVAILABLE.has(code) || SOCKET_UNAVAILABLE.has(code) || ADAPTER_UNAVAILABLE.has(kind)) return true;
    if (kind === 'postgres' && PG_RETRYABLE.test(code)) return true;
    if (name === 'PrismaClientKnownRequestError' && code === 'P2034') return true; // write conflict / deadlock
    if (/Connection terminated|connect ECONNREFUSED|Can't reach database/i.test(String(o.message ?? ''))) return true;
    queue.push(o.cause, (o.meta as Record<string, unknown> | undefined)?.driverAdapterError);
  }
  return false;
}

/** Classifies anything thrown into the HttpError the client will see. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isDatabaseUnavailable(err)) return unavailable('database_unavailable', 'the database is unavailable; retry later');
  // body-parser's errors carry `type` and a 4xx `status`
  const e = err as { type?: string; status?: number; message?: string } | null;
  if (e?.type === 'entity.parse.failed') return invalidRequest('request body is not valid JSON');
  if (e?.type === 'entity.too.large') return new HttpError(413, 'payload_too_large', 'request body is too large');
  // Express's router throws a URIError (status 400) for a path parameter with broken percent-encoding.
  if (err instanceof URIError) return invalidRequest('malformed path parameter: invalid percent-encoding');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.type) {
    return invalidRequest(e.message ?? 'bad request');
  }
  return new HttpError(500, 'internal_error', 'internal error');
}

export function sendError(res: Response, error: HttpError): void {
  // a rate limiter that knows its window says so itself
  if (error.status === 429 && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', '1');
  // RFC 6750: a 401 for a missing or bad credential tells the client which scheme to use
  if (error.code === 'unauthorized') res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(error.status).json(error.toBody());
}

/** The Express error handler: renders any error in the shared shape and logs the unexpected ones. */
export function errorMiddleware(log: (message: string, err: unknown) => void = defaultLog): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const error = toHttpError(err);
    if (error.status === 500 || (error.code === 'database_unavailable' && !(err instanceof HttpError))) {
      log(`${req.method} ${req.originalUrl} failed: ${error.code}`, err);
    }
    sendError(res, error);
  };
}

function defaultLog(message: string, err: unknown): void {
  log.error(message, { err });
}
