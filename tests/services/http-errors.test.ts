import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { createDb } from '../../lib/db.ts';
import { HttpError, parse, toHttpError } from '../../lib/http-errors.ts';
import { createOrdersApp } from '../../services/orders/app.ts';
import { listen } from '../../services/common/server.ts';
import { authFor, TEST_SERVICE_KEYS } from '../support/service-keys.ts';

describe('error mapping', () => {
  test('a validation failure is 400 invalid_request naming the first bad field, and all of them', () => {
    const schema = z.object({ orderId: z.string(), lines: z.array(z.object({ quantity: z.number().int().min(1) })) });
    try {
      parse(schema, { lines: [{ quantity: 1 }, { quantity: 0 }] });
      assert.fail('expected a validation error');
    } catch (err) {
      assert.ok(err instanceof HttpError);
      assert.equal(err.status, 400);
      assert.deepEqual(err.toBody().error, {
        code: 'invalid_request',
        message: err.message,
        field: 'orderId',
        fields: ['orderId', 'lines.1.quantity'],
      });
    }
  });

  test('unknown errors are 500 internal_error and leak nothing', () => {
    const error = toHttpError(new Error('secret connection string'));
    assert.equal(error.status, 500);
    assert.equal(error.code, 'internal_error');
    assert.doesNotMatch(JSON.stringify(error.toBody()), /secret/);
  });

  test('an unreachable database is 503 database_unavailable, on /healthz and on any request', async () => {
    const db = createDb('postgresql://postgres@127.0.0.1:1/nowhere');
    const server = await listen(createOrdersApp(db, { acceptedKeys: TEST_SERVICE_KEYS, inventoryUrl: 'http://127.0.0.1:1', serviceKey: TEST_SERVICE_KEYS[0] }), 0, '127.0.0.1');
    const quiet = console.error;
    console.error = () => {};
    try {
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { error: { code: string } }).error.code, 'database_unavailable');

      const read = await fetch(`${server.url}/orders/o-1`, { headers: authFor('orders') });
      assert.equal(read.status, 503);
      const write = await fetch(`${server.url}/orders/o-1/cancel`, {
        method: 'POST',
        headers: { ...authFor('orders'), 'content-type': 'application/json', 'idempotency-key': 'k' },
        body: JSON.stringify({ reason: 'x' }),
      });
      assert.equal(write.status, 503);
      assert.equal(((await write.json()) as { error: { code: string } }).error.code, 'database_unavailable');
    } finally {
      console.error = quiet;
      await server.close();
      await db.$disconnect();
    }
  });

  test('malformed JSON is 400 invalid_request', async () => {
    const db = createDb('postgresql://postgres@127.0.0.1:1/nowhere');
    const server = await listen(createOrdersApp(db, { acceptedKeys: TEST_SERVICE_KEYS, inventoryUrl: 'http://127.0.0.1:1', serviceKey: TEST_SERVICE_KEYS[0] }), 0, '127.0.0.1');
    try {
      const response = await fetch(`${server.url}/orders`, {
        method: 'POST',
        headers: { ...authFor('orders'), 'content-type': 'application/json', 'idempotency-key': 'k' },
        body: '{"orderId": ',
      });
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'invalid_request');
    } finally {
      await server.close();
      await db.$disconnect();
    }
  });
});
