// What every worker adds around its workflows and activities: tracing (RunActivity spans continuing
// the workflow's trace; workflow spans exported through a sink), the business metrics and log
// attributes of workflows/interceptors.ts, and the log context of each activity, which
// activities/http.ts forwards to the services as headers.
import { fileURLToPath } from 'node:url';
import { isSpanContextValid, trace, type SpanContext } from '@opentelemetry/api';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  ActivityOutboundCallsInterceptor,
  GetLogAttributesInput,
  Next,
  WorkerOptions,
} from '@temporalio/worker';
import { withLogContext } from '../lib/logger.ts';
import { workflowSpanSinks } from '../lib/telemetry.ts';

/** Bundled with the workflows (webpack resolves the `.ts` path like the workflows'). */
export const WORKFLOW_INTERCEPTOR_MODULES = [fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url))];

/** Interceptors and sinks for Worker.create; `workflows: false` for a worker that runs only activities. */
export function workerObservability({ workflows }: { workflows: boolean }): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const activity: ActivityInterceptorsFactory[] = [
    (ctx) => ({
      inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
      outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
    }),
    activityLogContext,
  ];
  if (!workflows) return { interceptors: { activity } };
  return { interceptors: { activity, workflowModules: WORKFLOW_INTERCEPTOR_MODULES }, sinks: workflowSpanSinks() };
}

/**
 * Runs each activity with its workflow, run and order in the log context (lib/logger.ts), and puts
 * the order id on the SDK's activity log lines too (they carry workflow and run ids already).
 */
const activityLogContext: ActivityInterceptorsFactory = (ctx) => {
  let orderId: string | undefined;
  // The SDK logs an attempt's outcome ("Activity failed") after the RunActivity span has ended and
  // left the context, so its trace is remembered here for those lines.
  let span: SpanContext | undefined;
  return {
    inbound: {
      execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
        orderId = orderIdOf(input.args);
        span = trace.getActiveSpan()?.spanContext();
        // undefined only for standalone activities, which this system does not run
        const execution = ctx.info.workflowExecution;
        return withLogContext({ workflowId: execution?.workflowId, runId: execution?.runId, orderId }, () => next(input));
      },
    },
    outbound: {
      getLogAttributes(input: GetLogAttributesInput, next: Next<ActivityOutboundCallsInterceptor, 'getLogAttributes'>) {
        const withTrace = span && isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId, ...input } : input;
        return next(orderId === undefined ? withTrace : { ...withTrace, orderId });
      },
    },
  };
};

/** Most activities take `{ orderId, ... }`; the others are not about one order. */
function orderIdOf(args: readonly unknown[]): string | undefined {
  const [first] = args;
  if (first !== null && typeof first === 'object') {
    const { orderId } = first as { orderId?: unknown };
    if (typeof orderId === 'string') return orderId;
  }
  return undefined;
}
