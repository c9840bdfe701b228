import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashRequest } from '../../services/common/idempotency.ts';
import { CARDS, startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspTimeoutCardMs: 1_500 });
});
after(() => s.stop());

async function addSku(onHand: number) {
  const sku = uniqueId('IDEM');
  await s.db.stockItem.create({ data: { sku, name: sku, priceMinor: 100, currency: 'EUR', onHand } });
  return sku;
}

describe('Idempotency-Key', () => {
  test('a replay returns the first response byte for byte and does not redo the work', async () => {
    const sku = await addSku(5);
    const orderId = uniqueId('order');
    const body = { orderId, lines: [{ sku, quantity: 2 }] };
    const first = await s.post('inventory', '/reservations', body, `key-${orderId}`);
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('idempotent-replayed'), null);

    // Release in between: re-running the reserve would now be refused, so an
    // identical 201 proves the stored answer was replayed without running it.
    await s.post('inventory', `/reservations/${orderId}/release`);
    const replay = await s.post('inventory', '/reservations', { lines: [{ quantity: 2, sku }], orderId }, `key-${orderId}`);
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.text, first.text);
    const item = await s.db.stockItem.findUniqueOrThrow({ where: { sku } });
    assert.equal(item.reserved, 0);
  });

  test('the same key with a different body is 422 and does nothing', async () => {
    const sku = await addSku(5);
    const key = uniqueId('key');
    await s.post('inventory', '/reservations', { orderId: uniqueId('order'), lines: [{ sku, quantity: 1 }] }, key);
    const other = uniqueId('order');
    const reused = await s.post('inventory', '/reservations', { orderId: other, lines: [{ sku, quantity: 1 }] }, key);
    assert.equal(reused.status, 422);
    assert.equal(reused.body.error.code, 'idempotency_key_reused');
    assert.equal(await s.db.reservation.count({ where: { orderId: other } }), 0);

    const otherPath = await s.post('inventory', `/reservations/${other}/release`, {}, key);
    assert.equal(otherPath.status, 422);
  });

  test('concurrent requests with one key have exactly one effect', async () => {
    const orderId = uniqueId('order');
    const key = uniqueId('key');
    const body = { orderId, checkoutId: 'c', customerId: 'cust-bob', currency: 'EUR', lines: [{ sku: 'MUG-LOGO', quantity: 1, quotedUnitPriceMinor: 1299 }] };
    const answers = await Promise.all(Array.from({ length: 12 }, () => s.post('orders', '/orders', body, key)));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.every((st) => st === 201 || st === 429), `statuses: ${statuses}`);
    assert.equal(answers.filter((a) => a.status === 201 && !a.headers.get('idempotent-replayed')).length, 1);
    for (const busy of answers.filter((a) => a.status === 429)) {
      assert.equal(busy.body.error.code, 'request_in_progress');
      assert.equal(busy.headers.get('retry-after'), '1');
    }
    assert.equal(await s.db.order.count({ where: { id: orderId } }), 1);
    assert.equal(await s.db.orderStatusChange.count({ where: { orderId } }), 1);
  });

  test('a key still in progress answers 429 request_in_progress', async () => {
    const key = uniqueId('key');
    const body = { amountMinor: 100, currency: 'EUR', reference: uniqueId('ref'), paymentMethod: (await s.paymentMethod(CARDS.timeout)).token };
    const first = s.post('psp', '/v1/payments', body, key);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = s.post('psp', '/v1/payments', body, key);
    const answers = await Promise.all([first, second]);
    // whichever claimed the key holds it for the timeout card's 1.5 s; the other is turned away
    assert.deepEqual(answers.map((a) => a.status).sort(), [429, 504]);
    const busy = answers.find((a) => a.status === 429)!;
    assert.equal(busy.body.error.code, 'request_in_progress');
  });

  test('business refusals (4xx) are stored and replayed', async () => {
    const sku = await addSku(1);
    const key = uniqueId('key');
    const body = { orderId: uniqueId('order'), lines: [{ sku, quantity: 3 }] };
    const refused = await s.post('inventory', '/reservations', body, key);
    assert.equal(refused.status, 409);
    await s.db.stockItem.update({ where: { sku }, data: { onHand: 10 } });
    const replay = await s.post('inventory', '/reservations', body, key);
    assert.equal(replay.status, 409);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.text, refused.text);
  });

  test('a retryable failure (5xx) is not stored, so the retry runs', async () => {
    const key = uniqueId('key');
    const body = { orderId: uniqueId('order'), amountMinor: 100, currency: 'EUR', paymentMethod: await s.paymentMethod(CARDS.approve) };
    await s.request('psp', 'PUT', '/_faults', { errorRate: 1 });
    try {
      assert.equal((await s.post('payments', '/payments/authorize', body, key)).status, 503);
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
    }
    assert.equal(await s.db.idempotencyRecord.count({ where: { scope: 'payments', key } }), 0);
    const retry = await s.post('payments', '/payments/authorize', body, key);
    assert.equal(retry.status, 202); // accepted: the provider decides asynchronously
  });

  test('an attempt that crashed mid-way is taken over once its record is stale', async () => {
    const orderId = uniqueId('order');
    const key = uniqueId('key');
    const path = '/awards';
    const body = { orderId, customerId: 'cust-bob', amountMinor: 1000, currency: 'EUR' };
    const hash = hashRequest('POST', path, body);
    await s.db.$executeRaw`
      INSERT INTO idempotency_records (scope, key, request_hash, created_at, updated_at)
      VALUES ('loyalty', ${key}, ${hash}, now(), now())`;
    assert.equal((await s.post('loyalty', path, body, key)).status, 429);

    await s.db.$executeRaw`UPDATE idempotency_records SET updated_at = now() - interval '2 minutes' WHERE key = ${key}`;
    const takeover = await s.post('loyalty', path, body, key);
    assert.equal(takeover.status, 201);
    assert.equal((await s.post('loyalty', path, body, key)).headers.get('idempotent-replayed'), 'true');
  });

  test('a POST without Idempotency-Key is 400 naming the header', async () => {
    const answer = await s.post('orders', '/orders', {}, null);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'invalid_request');
    assert.equal(answer.body.error.field, 'Idempotency-Key');
  });

  test('keys are scoped per service', async () => {
    const key = uniqueId('key');
    const orderId = uniqueId('order');
    assert.equal((await s.post('loyalty', '/awards', { orderId, customerId: 'cust-bob', amountMinor: 100, currency: 'EUR' }, key)).status, 201);
    assert.equal((await s.post('inventory', `/reservations/${orderId}/release`, {}, key)).status, 200);
  });
});
