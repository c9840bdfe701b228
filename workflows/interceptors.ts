// The workflow interceptors the worker bundles beside the workflows (workers/interceptors.ts names
// this module): OpenTelemetry spans for runs, activities and child workflows; the business metrics,
// counted here in one place from each workflow's result instead of inside the business code; and
// the order id on every workflow log line. Runs in the workflow sandbox: deterministic, no I/O.
// The SDK's metricMeter emits nothing while replaying, so a run is counted once however often it is replayed.
// Names end in `_total` ourselves: the runtime's Prometheus exporter adds no suffix (its own counters have none).
import {
  metricMeter,
  workflowInfo,
  type GetLogAttributesInput,
  type Next,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
import type { CheckoutResult } from '../shared/checkout.ts';
import type { RefundState } from '../shared/refunds.ts';
import { OrderIdKey } from '../shared/search-attributes.ts';
import type { ReconciliationReport } from './reconciliation.ts';

const checkoutsStarted = metricMeter.createCounter('commerce_checkouts_started_total', 'checkouts', 'Checkout workflows started');
const checkoutsCompleted = metricMeter.createCounter('commerce_checkouts_completed_total', 'checkouts', 'Checkout workflows finished, by outcome (paid, cancelled, failed)');
const checkoutDuration = metricMeter.createHistogram('commerce_checkout_duration_ms', 'int', 'ms', 'Checkout duration in workflow time, start to result, by outcome');
const compensationsRun = metricMeter.createCounter('commerce_compensations_run_total', 'compensations', 'Compensations a checkout ran, by compensation');
const refundsCompleted = metricMeter.createCounter('commerce_refunds_completed_total', 'refunds', 'Refund workflows finished, by final status');
const reconciliationMismatches = metricMeter.createCounter('commerce_reconciliation_mismatches_total', 'mismatches', 'Mismatches a reconciliation run found, by kind and outcome');

/** Counts what a finished run of a checkout, refund or reconciliation tells about the business. */
class BusinessMetricsInterceptor implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { workflowType, runStartTime } = workflowInfo();
    if (workflowType === 'checkout') checkoutsStarted.add(1);
    let result: unknown;
    try {
      result = await next(input);
    } catch (err) {
      // continue-as-new and cancellation also arrive here; only the checkout is counted as failed
      if (workflowType === 'checkout') countCheckout('failed', runStartTime);
      throw err;
    }
    if (workflowType === 'checkout') countCheckoutResult(result as CheckoutResult, runStartTime);
    if (workflowType === 'refund') refundsCompleted.add(1, { outcome: (result as RefundState).status });
    if (workflowType === 'reconciliation') {
      for (const { kind, outcome } of (result as ReconciliationReport).mismatches) reconciliationMismatches.add(1, { kind, outcome });
    }
    return result;
  }
}

function countCheckoutResult(result: CheckoutResult, startedAt: Date): void {
  countCheckout(result.status === 'PAID' ? 'paid' : 'cancelled', startedAt);
  for (const { name, status } of result.compensations) {
    if (status === 'DONE') compensationsRun.add(1, { compensation: name });
  }
}

function countCheckout(outcome: 'paid' | 'cancelled' | 'failed', startedAt: Date): void {
  checkoutsCompleted.add(1, { outcome });
  // Date.now() is workflow time here (the current task's time), so this is the run's business duration.
  checkoutDuration.record(Date.now() - startedAt.getTime(), { outcome });
}

/** The order a workflow is about (its OrderId search attribute) on each of its log lines. */
class OrderIdLogAttributes implements WorkflowOutboundCallsInterceptor {
  getLogAttributes(input: GetLogAttributesInput, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>): Record<string, unknown> {
    const orderId = workflowInfo().typedSearchAttributes.get(OrderIdKey);
    return next(orderId === undefined ? input : { ...input, orderId });
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new OpenTelemetryInboundInterceptor(), new BusinessMetricsInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor(), new OrderIdLogAttributes()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
