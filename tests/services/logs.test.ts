// Structured logs: every line a service writes while serving a request is one JSON object naming
// the caller's trace (from `traceparent`) and the workflow, run and order it serves (the headers
// activities/http.ts sends) — also after the JSON body was parsed, and from the error handler.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Db } from '../../lib/db.ts';
import { createLogger, sdkLogFunction, setLogSink } from '../../lib/logger.ts';
import { installTracing } from '../../lib/telemetry.ts';
import { createServiceApp } from '../../services/common/app.ts';
import { listen, type RunningServer } from '../../services/common/server.ts';
import { authFor, TEST_SERVICE_KEYS } from '../support/service-keys.ts';

const exporter = new InMemorySpanExporter();
installTracing({ serviceName: 'logs-test', exporter });

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';
const callerHeaders = {
  ...authFor('orders'),
  'content-type': 'application/json',
  traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`,
  'x-workflow-id': 'checkout-logs-1',
  'x-run-id': 'run-1',
  'x-order-id': 'order-logs-1',
};

const lines: string[] = [];
const restoreSink = setLogSink((line) => lines.push(line));
const log = createLogger('orders');
let server: RunningServer;

before(async () => {
  // GET and repeatable POST routes never touch the database
  const app = createServiceApp('orders', {} as Db, (router) => {
    router.postRepeatable('/echo', async (req) => {
      log.info('echoing', { size: JSON.stringify(req.body).length });
      return { status: 200, body: req.body };
    });
    router.get('/boom', async () => {
      throw new Error('boom');
    });
  }, { acceptedKeys: TEST_SERVICE_KEYS });
  server = await listen(app, 0, '127.0.0.1');
});
after(async () => {
  await server.close();
  restoreSink();
});

function parsedLines(): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('a line logged while serving a request names its trace, workflow, run and order', async () => {
  const res = await fetch(`${server.url}/echo`, { method: 'POST', headers: callerHeaders, body: JSON.stringify({ hello: 'world' }) });
  assert.equal(res.status, 200);

  const line = parsedLines().find((l) => l.msg === 'echoing');
  assert.ok(line, lines.join('\n'));
  assert.equal(line.level, 'info');
  assert.equal(line.service, 'orders');
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT/);
  assert.equal(line.traceId, TRACE_ID);
  assert.match(String(line.spanId), /^[0-9a-f]{16}$/);
  assert.notEqual(line.spanId, CALLER_SPAN_ID, 'the service logs under its own server span');
  assert.equal(line.workflowId, 'checkout-logs-1');
  assert.equal(line.runId, 'run-1');
  assert.equal(line.orderId, 'order-logs-1');
  assert.equal(line.size, 17);

  const span = exporter.getFinishedSpans().find((s) => s.name === 'POST /echo');
  assert.ok(span);
  assert.equal(span.spanContext().spanId, line.spanId);
  assert.equal(span.parentSpanId, CALLER_SPAN_ID);
});

test('an unexpected error is logged once, as JSON with the trace and the order', async () => {
  const res = await fetch(`${server.url}/boom`, { headers: callerHeaders });
  assert.equal(res.status, 500);

  const errors = parsedLines().filter((l) => l.level === 'error');
  assert.equal(errors.length, 1, lines.join('\n'));
  const [line] = errors;
  assert.match(String(line!.msg), /GET \/boom failed: internal_error/);
  assert.equal(line!.traceId, TRACE_ID);
  assert.equal(line!.orderId, 'order-logs-1');
  assert.equal((line!.err as { message?: string }).message, 'boom');
});

test("the worker's SDK entries become the same JSON lines, trace ids renamed", () => {
  lines.length = 0;
  sdkLogFunction('worker')({
    level: 'INFO',
    message: 'Activity completed',
    timestampNanos: 0n,
    meta: { workflowId: 'checkout-logs-2', workflowRunId: 'run-2', orderId: 'order-logs-2', trace_id: TRACE_ID, span_id: CALLER_SPAN_ID, trace_flags: '01' },
  });
  const [line] = parsedLines();
  assert.deepEqual(
    { ...line, time: undefined },
    {
      time: undefined,
      level: 'info',
      msg: 'Activity completed',
      service: 'worker',
      workflowId: 'checkout-logs-2',
      runId: 'run-2',
      orderId: 'order-logs-2',
      traceId: TRACE_ID,
      spanId: CALLER_SPAN_ID,
    },
  );
});
