// GET /healthz against a real Temporal dev server and the real PostgreSQL check: public, and
// saying what is down without the internals of why.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { startApiHarness, unreachableDatabaseUrl, type ApiHarness } from './harness.ts';

let server: DevServer;
const harnesses: ApiHarness[] = [];

before(async () => {
  server = await startDevServer();
});

after(async () => {
  await Promise.all(harnesses.map((h) => h.close()));
  await server?.stop();
});

async function api(databaseUrl?: string): Promise<ApiHarness> {
  const harness = await startApiHarness({ temporalAddress: server.address, ...(databaseUrl ? { databaseUrl } : {}) });
  harnesses.push(harness);
  return harness;
}

test('healthz is 200 when Temporal and the database answer', async () => {
  const res = await (await api()).request('GET', '/healthz');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { ok: true, temporal: 'up', database: 'up' });
});

test('healthz is 503 database_unavailable when the database is unreachable', async () => {
  const res = await (await api(await unreachableDatabaseUrl())).request('GET', '/healthz');
  assert.equal(res.status, 503);
  assert.equal(res.body.ok, false);
  assert.equal(res.body.temporal, 'up');
  assert.equal(res.body.database, 'down');
  assert.equal(res.body.error.code, 'database_unavailable');
  assert.match(res.body.error.message, /database/);
  // public: what is down, never where it is or what the driver said (that goes to the log)
  assert.doesNotMatch(res.body.error.message, /127\.0\.0\.1|ECONNREFUSED|postgres/i);
});

test('healthz needs no token, and a token is not looked at', async () => {
  const harness = await api();
  assert.equal((await harness.request('GET', '/healthz')).status, 200);
  assert.equal((await harness.request('GET', '/healthz', { token: 'not-a-token' })).status, 200);
});

test('an unknown route is a JSON 404', async () => {
  const res = await (await api()).request('GET', '/nope');
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, 'not_found');
});
