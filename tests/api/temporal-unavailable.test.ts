// With Temporal unreachable (the client points at a port nothing listens on),
// every route that needs it answers 503 temporal_unavailable, quickly, and
// validation still answers 400 without asking Temporal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkoutWorkflowId } from '../../shared/checkout.ts';
import {
  checkoutBody,
  FAST_TIMEOUTS,
  freshKey,
  startApiHarness,
  unreachableDatabaseUrl,
  unreachableTemporalAddress,
  type ApiHarness,
} from './harness.ts';

let api: ApiHarness;
/** checkoutBody() is cust-ada's. */
let ada: string;

before(async () => {
  api = await startApiHarness({ temporalAddress: await unreachableTemporalAddress() });
  ada = await api.tokenFor('customer', 'cust-ada');
});

after(async () => {
  await api?.close();
});

function assertTemporalUnavailable(res: { status: number; body: any }) {
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, 'temporal_unavailable');
  assert.match(res.body.error.message, /Temporal/);
}

test('POST /checkouts is 503 temporal_unavailable within the request deadline', async () => {
  const started = Date.now();
  const res = await api.request('POST', '/checkouts', {
    body: checkoutBody(),
    headers: { 'Idempotency-Key': freshKey('temporal-down') },
    token: ada,
  });
  assertTemporalUnavailable(res);
  assert.ok(Date.now() - started < FAST_TIMEOUTS.temporalMs + 2_000, 'fails at the deadline, not after the SDK retries');
});

test('GET and cancel are 503 temporal_unavailable', async () => {
  const path = `/checkouts/${checkoutWorkflowId(freshKey('temporal-down'))}`;
  assertTemporalUnavailable(await api.request('GET', path, { token: ada }));
  assertTemporalUnavailable(await api.request('POST', `${path}/cancel`, { body: {}, token: ada }));
});

test('an invalid checkout is still a 400: validation does not need Temporal', async () => {
  const res = await api.request('POST', '/checkouts', {
    body: checkoutBody({ currency: 'euro' }),
    headers: { 'Idempotency-Key': freshKey('temporal-down') },
    token: ada,
  });
  assert.equal(res.status, 400);
  assert.equal(res.body.error.field, 'currency');
});

test('authentication does not need Temporal: no token is still a 401', async () => {
  const res = await api.request('GET', `/checkouts/${checkoutWorkflowId(freshKey('temporal-down'))}`);
  assert.equal(res.status, 401);
  assert.equal(res.body.error.code, 'unauthorized');
});

test('healthz is 503 naming Temporal as down and the database as up', async () => {
  const res = await api.request('GET', '/healthz');
  assert.equal(res.status, 503);
  assert.equal(res.body.ok, false);
  assert.equal(res.body.temporal, 'down');
  assert.equal(res.body.database, 'up');
  assert.equal(res.body.error.code, 'temporal_unavailable');
  assert.match(res.body.error.message, /Temporal/);
});

test('healthz names both when Temporal and the database are down', async () => {
  const both = await startApiHarness({
    temporalAddress: await unreachableTemporalAddress(),
    databaseUrl: await unreachableDatabaseUrl(),
  });
  try {
    const res = await both.request('GET', '/healthz');
    assert.equal(res.status, 503);
    assert.equal(res.body.temporal, 'down');
    assert.equal(res.body.database, 'down');
    assert.match(res.body.error.message, /Temporal.*database/);
  } finally {
    await both.close();
  }
});

test('a Temporal call no route wrapped (a result long poll) that cannot reach Temporal is 503 temporal_unavailable, not a database 503 or a 500', async () => {
  const { ServiceError } = await import('@temporalio/client');
  const { asTemporalUnavailable } = await import('../../api/temporal.ts');
  const { toHttpError } = await import('../../lib/http-errors.ts');
  // what WorkflowHandle.result() throws while the dev server restarts
  const grpc = Object.assign(new Error('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7233'), { code: 14 });
  const err = new ServiceError('Failed to get Workflow execution history', { cause: grpc });
  // the shared mapping alone would read the socket error as the database's
  assert.equal(toHttpError(err).code, 'database_unavailable');
  const mapped = asTemporalUnavailable(err);
  assert.equal(mapped?.status, 503);
  assert.equal(mapped?.code, 'temporal_unavailable');
  assert.doesNotMatch(JSON.stringify(mapped?.toBody()), /127\.0\.0\.1|ECONNREFUSED/);
  // too many long polls on one run: busy, not broken
  const busy = asTemporalUnavailable(new ServiceError('Failed to get Workflow execution history', { cause: Object.assign(new Error('8 RESOURCE_EXHAUSTED: Workflow is busy.'), { code: 8 }) }));
  assert.equal(busy?.status, 503);
  assert.match(busy?.message ?? '', /busy/);
  // anything else is left to the shared mapping
  assert.equal(asTemporalUnavailable(new Error('boom')), null);
  assert.equal(asTemporalUnavailable(new ServiceError('not found', { cause: Object.assign(new Error('5 NOT_FOUND'), { code: 5 }) })), null);
});
