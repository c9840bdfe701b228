// Tracing for a process, installed in one place. One trace per checkout: the API's server span,
// StartWorkflow (client interceptor), RunWorkflow and StartActivity (workflow interceptors, exported
// from the sandbox through a sink), RunActivity (activity interceptor), the HTTP client span of
// activities/http.ts, the service's server span (lib/http-observability.ts) and Prisma's query spans.
//
// HTTP is instrumented by hand (Express middleware, a span around fetch) rather than by patching
// node:http/undici: require hooks are unreliable for ESM modules loaded by tsx.
import { trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { PrismaInstrumentation, registerInstrumentations } from '@prisma/instrumentation';
import { OpenTelemetryWorkflowClientInterceptor, makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { ClientInterceptors } from '@temporalio/client';
import { WorkflowStartCounter } from './metrics.ts';
import type { InjectedSinks } from '@temporalio/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';

export interface TracingOptions {
  /** `service.name` of every span this process exports: 'api', 'worker', 'services'. */
  serviceName: string;
  /** Base URL of an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to `<url>/v1/traces`. */
  otlpEndpoint?: string;
  /** Spans go here instead, one by one (tests pass an InMemorySpanExporter). */
  exporter?: SpanExporter;
}

export interface Tracing {
  readonly processor: SpanProcessor;
  readonly resource: Resource;
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;

/**
 * Registers the process's tracer provider: AsyncLocalStorage context (which also carries the log
 * context of lib/logger.ts), W3C `traceparent` propagation, and spans sent to the given exporter,
 * to the OTLP endpoint, or nowhere. Even when they go nowhere, spans get real ids and travel
 * between processes, so every log line names the trace it belongs to. Prisma's query spans are
 * only made when they are exported. Once per process; a second call returns the first.
 */
export function installTracing(options: TracingOptions): Tracing {
  if (installed) return installed;
  const processor = options.exporter
    ? new SimpleSpanProcessor(options.exporter)
    : options.otlpEndpoint
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.otlpEndpoint.replace(/\/+$/, '')}/v1/traces` }))
      : undefined;

  const resource = new Resource({ 'service.name': options.serviceName });
  const provider = new NodeTracerProvider({ resource, spanProcessors: processor ? [processor] : [] });
  provider.register({ contextManager: new AsyncLocalStorageContextManager(), propagator: new W3CTraceContextPropagator() });
  const unregister = processor
    ? registerInstrumentations({ tracerProvider: provider, instrumentations: [new PrismaInstrumentation()] })
    : () => {};
  installed = {
    processor: processor ?? new NoopSpanProcessor(),
    resource,
    async shutdown() {
      unregister();
      await provider.shutdown();
    },
  };
  return installed;
}

/** The tracer for our own spans (HTTP server and client); no-op until tracing is installed. */
export function tracer(): Tracer {
  return trace.getTracer('commerce');
}

/** Interceptors for the API's Temporal Client: starts, signals and queries carry the caller's trace, and starts are counted. */
export function temporalClientInterceptors(): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor(), new WorkflowStartCounter()] };
}

/**
 * The sink through which the workflow interceptors (workflows/interceptors.ts) hand their spans
 * out of the sandbox to this process's span processor. Registered even without tracing, since
 * the workflow interceptors always call it.
 */
export function workflowSpanSinks(): InjectedSinks<OpenTelemetrySinks> {
  const processor = installed?.processor ?? new NoopSpanProcessor();
  const resource = installed?.resource ?? new Resource({ 'service.name': 'worker' });
  return { exporter: makeWorkflowExporter(processor, resource) };
}
