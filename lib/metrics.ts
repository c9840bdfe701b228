// Prometheus metrics of the API and the services (prom-client), served on their `/metrics`.
// One registry per process: the six services share a process (services/main.ts), so the HTTP
// histogram carries a `service` label instead of being registered once per app.
// The worker's metrics (the SDK's and the business counters from workflows/interceptors.ts) are
// served by the Temporal runtime itself on WORKER_METRICS_ADDRESS.
import type { Next, WorkflowClientInterceptor, WorkflowStartInput, WorkflowStartOutput } from '@temporalio/client';
import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

export const httpRequestDuration = new Histogram({
  name: 'commerce_http_request_duration_seconds',
  help: 'HTTP requests served, by service, method, route template and status code',
  labelNames: ['service', 'method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

/** Outcome: a rejection code (invalid_signature, timestamp_out_of_tolerance, invalid_request), duplicate, or how the nudge went (signaled, no_running_checkout, ...). */
export const webhookEvents = new Counter({
  name: 'commerce_webhook_events_total',
  help: 'Provider webhook deliveries received on POST /webhooks/psp, by outcome',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const workflowStarts = new Counter({
  name: 'commerce_api_workflow_starts_total',
  help: 'Workflow starts accepted by Temporal from the API, by workflow type (a repeated POST with the same Idempotency-Key counts again)',
  labelNames: ['workflow_type'] as const,
  registers: [registry],
});

/**
 * Counts the API's workflow starts (`checkout` = checkouts started by POST /checkouts) where they
 * happen, in the Temporal client, so no route has to remember to.
 */
export class WorkflowStartCounter implements WorkflowClientInterceptor {
  async startWithDetails(input: WorkflowStartInput, next: Next<WorkflowClientInterceptor, 'startWithDetails'>): Promise<WorkflowStartOutput> {
    const output = await next(input);
    workflowStarts.inc({ workflow_type: input.workflowType });
    return output;
  }
}

/** GET /metrics in Prometheus' text format. */
export function metricsHandler(): RequestHandler {
  return async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.send(await registry.metrics());
  };
}
