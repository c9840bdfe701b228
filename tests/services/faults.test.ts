import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
afterEach(() => s.request('inventory', 'DELETE', '/_faults'));
after(() => s.stop());

const setFaults = (faults: Record<string, unknown>) => s.request('inventory', 'PUT', '/_faults', faults);
const reserve = (orderId: string, key?: string, timeoutMs?: number) =>
  s.post('inventory', '/reservations', { orderId, lines: [{ sku: 'TSHIRT-RED-M', quantity: 1 }] }, key, { timeoutMs });

describe('fault injection', () => {
  test('errorRate 1 answers 503 injected_fault before doing any work', async () => {
    await setFaults({ errorRate: 1 });
    const orderId = uniqueId('order');
    const key = uniqueId('key');
    const answer = await reserve(orderId, key);
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, 'injected_fault');
    assert.equal(await s.db.reservation.count({ where: { orderId } }), 0);
    assert.equal(await s.db.idempotencyRecord.count({ where: { key } }), 0);

    // control endpoints are never faulted
    assert.equal((await s.get('inventory', '/healthz')).status, 200);
    assert.equal((await s.get('inventory', '/_faults')).body.errorRate, 1);
  });

  test('hangAfterMs commits the work, then holds the response past the caller timeout; the retry replays', async () => {
    await setFaults({ hangAfterMs: 5_000, hangRate: 1 });
    const orderId = uniqueId('order');
    const key = uniqueId('key');
    await assert.rejects(reserve(orderId, key, 1_000), (err: Error) => err.name === 'TimeoutError');
    // the answer is held, but the work and its stored response are committed
    await until(async () => (await s.db.idempotencyRecord.findFirst({ where: { key } }))?.responseCode === 201);
    const reservation = await s.db.reservation.findUnique({ where: { orderId } });
    assert.equal(reservation?.status, 'RESERVED');

    await s.request('inventory', 'DELETE', '/_faults');
    const retry = await reserve(orderId, key);
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(await s.db.reservationLine.count({ where: { orderId } }), 1);
  });

  test('latencyMs delays handling', async () => {
    await setFaults({ latencyMs: 300 });
    const started = Date.now();
    assert.equal((await s.get('inventory', '/stock/MUG-LOGO')).status, 200);
    assert.ok(Date.now() - started >= 280);
  });

  test('path limits the faults to matching requests', async () => {
    await setFaults({ errorRate: 1, path: '/reservations' });
    assert.equal((await s.get('inventory', '/stock')).status, 200);
    assert.equal((await reserve(uniqueId('order'))).status, 503);
  });

  test('faults are read, replaced and cleared at run time; bad settings are 400', async () => {
    const put = await setFaults({ latencyMs: 5, errorRate: 0.5 });
    assert.deepEqual(put.body, { latencyMs: 5, errorRate: 0.5 });
    assert.deepEqual((await s.get('inventory', '/_faults')).body, { latencyMs: 5, errorRate: 0.5 });
    assert.deepEqual((await s.request('inventory', 'DELETE', '/_faults')).body, {});

    const bad = await setFaults({ errorRate: 2 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'errorRate');
    const typo = await setFaults({ errorrate: 1 });
    assert.equal(typo.status, 400);
  });
});
