// api/main.ts's startApi: the process serves (and says what is down) while Temporal
// is unreachable, picks Temporal up once it answers, and closes cleanly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApi } from '../../api/main.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { freePort, startDevServer } from '../../lib/temporal-dev-server.ts';
import { DATABASE_URL } from './harness.ts';

function configFor(temporalAddress: string, apiPort = 0): Config {
  const defaults = loadConfig();
  return {
    ...defaults,
    databaseUrl: DATABASE_URL,
    apiPort,
    temporal: { ...defaults.temporal, address: temporalAddress, namespace: 'default' },
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
