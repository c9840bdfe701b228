// api/main.ts's startApi: the process serves (and says what is down) while Temporal
// is unreachable, picks Temporal up once it answers, and closes cleanly; it trusts the
// configured issuer's tokens and limits each client to its configured rate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApi } from '../../api/main.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { freePort, startDevServer } from '../../lib/temporal-dev-server.ts';
import { authConfigFor, bearer, startTestIssuer } from '../support/auth.ts';
import { DATABASE_URL } from './harness.ts';

function configFor(temporalAddress: string, apiPort = 0, overrides: Partial<Config> = {}): Config {
  const defaults = loadConfig();
  return {
    ...defaults,
    databaseUrl: DATABASE_URL,
    apiPort,
    temporal: { ...defaults.temporal, address: temporalAddress, namespace: 'default' },
    ...overrides,
  };
}

test('the API starts while Temporal is down and reports it up once Temporal answers', async () => {
  const port = await freePort();
  const api = await startApi(configFor(`127.0.0.1:${port}`));
  try {
    const down = await fetch(`${api.url}/healthz`);
    assert.equal(down.status, 503);
    assert.equal((await down.json()).temporal, 'down');

    const server = await startDevServer({ port });
    try {
      const deadline = Date.now() + 20_000;
      let body: { ok?: boolean } = {};
      while (Date.now() < deadline) {
        body = await (await fetch(`${api.url}/healthz`)).json();
        if (body.ok) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.deepEqual(body, { ok: true, temporal: 'up', database: 'up' });
    } finally {
      await server.stop();
    }
  } finally {
    await api.close();
  }
});

test('a port already in use is a clear startup error', async () => {
  const first = await startApi(configFor(`127.0.0.1:${await freePort()}`));
  try {
    const port = Number(new URL(first.url).port);
    await assert.rejects(startApi(configFor(`127.0.0.1:${await freePort()}`, port)), /cannot listen on port \d+/);
  } finally {
    await first.close();
  }
});

test('the API trusts tokens of the configured issuer only, and limits each client to the configured rate', async () => {
  const issuer = await startTestIssuer();
  const other = await startTestIssuer();
  const api = await startApi(
    configFor(`127.0.0.1:${await freePort()}`, 0, { auth: authConfigFor(issuer), apiRateLimitPerMinute: 3 }),
  );
  try {
    const me = await fetch(`${api.url}/me`, { headers: bearer(await issuer.tokenFor('finance', 'fay')) });
    assert.equal(me.status, 200);
    assert.deepEqual((await me.json()).subject, 'fay');
    assert.equal(me.headers.get('x-content-type-options'), 'nosniff', 'helmet headers');

    const forged = await fetch(`${api.url}/me`, { headers: bearer(await other.tokenFor('finance', 'fay')) });
    assert.equal(forged.status, 401);
    assert.equal((await forged.json()).error.code, 'unauthorized');

    const anonymous = await fetch(`${api.url}/me`);
    assert.equal(anonymous.status, 401);

    const limited = await fetch(`${api.url}/me`);
    assert.equal(limited.status, 429);
    assert.equal((await limited.json()).error.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) > 1, 'Retry-After is the rest of the window');
  } finally {
    await api.close();
    await Promise.all([issuer.stop(), other.stop()]);
  }
});
