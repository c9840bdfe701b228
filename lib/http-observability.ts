// Both ends of our HTTP calls. In: the Express middleware every app (the API and each service)
// mounts first: one SERVER span per request, continuing the caller's trace from its `traceparent`;
// the log context from the `x-workflow-id`, `x-run-id` and `x-order-id` headers; and the request
// duration histogram. Out: a CLIENT span around a call, and the headers that carry the trace and
// the log context on. Hand-written because module patching of node:http is unreliable under ESM
// (lib/telemetry.ts).
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';
import { contextWithLogFields, currentLogContext, LOG_CONTEXT_HEADERS } from './logger.ts';
import { httpRequestDuration } from './metrics.ts';
import { tracer } from './telemetry.ts';

export function observeHttp(service: string): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const parent = propagation.extract(context.active(), req.headers);
    // Named by method until routing has matched; renamed to `METHOD /route/:param` at the end.
    const span = tracer().startSpan(
      req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'url.path': req.path,
          'commerce.service': service,
        },
      },
      parent,
    );
    const active = contextWithLogFields(trace.setSpan(parent, span), {
      workflowId: req.get(LOG_CONTEXT_HEADERS.workflowId),
      runId: req.get(LOG_CONTEXT_HEADERS.runId),
      orderId: req.get(LOG_CONTEXT_HEADERS.orderId),
    });
    // Body parsers read the request in stream callbacks, which need not run in this context.
    context.bind(active, req);
    context.bind(active, res);

    // 'close' also comes when the caller gave up before the answer (a timeout, a held fault): counted as aborted.
    res.once('close', () => {
      const route = routeOf(req);
      const answered = res.writableFinished;
      span.updateName(route ? `${req.method} ${route}` : req.method);
      if (route) span.setAttribute('http.route', route);
      if (answered) span.setAttribute('http.response.status_code', res.statusCode);
      if (!answered || res.statusCode >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR, ...(answered ? {} : { message: 'connection closed before the answer' }) });
      }
      span.end();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = answered ? String(res.statusCode) : 'aborted';
      httpRequestDuration.observe({ service, method: req.method, route: route ?? 'unmatched', status }, seconds);
    });

    context.with(active, next);
  };
}

/** The matched route's template (low cardinality), or undefined when no route matched (404s). */
function routeOf(req: Request): string | undefined {
  const path: unknown = req.route?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
}

/**
 * Runs one outgoing call in a CLIENT span. `call` gets the headers to send: `traceparent` (so the
 * callee's server span joins this trace) and the current log context (workflow, run, order).
 */
export function tracedCall<T extends { status: number }>(
  name: string,
  attributes: Attributes,
  call: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      const answer = await call(outgoingHeaders());
      span.setAttribute('http.response.status_code', answer.status);
      if (answer.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      return answer;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

function outgoingHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const logContext = currentLogContext();
  for (const [field, header] of Object.entries(LOG_CONTEXT_HEADERS) as [keyof typeof LOG_CONTEXT_HEADERS, string][]) {
    const value = logContext[field];
    if (value) headers[header] = value;
  }
  propagation.inject(context.active(), headers);
  return headers;
}
