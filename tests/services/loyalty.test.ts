import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

const points = async (customerId: string) => (await s.get('loyalty', `/accounts/${customerId}`)).body.points;

describe('loyalty', () => {
  test('an award gives one point per whole euro and is given once per order', async () => {
    const orderId = uniqueId('order');
    const award = { orderId, customerId: 'cust-bob', amountMinor: 5297, currency: 'EUR' };
    const before = await points('cust-bob');
    const first = await s.post('loyalty', '/awards', award);
    assert.equal(first.status, 201);
    assert.equal(first.body.points, 52);
    assert.equal(first.body.kind, 'AWARD');

    // another key (e.g. a retried activity whose record was lost): same entry, no new points
    const second = await s.post('loyalty', '/awards', award);
    assert.equal(second.status, 200);
    assert.equal(second.body.id, first.body.id);
    // the same key: replayed
    const replay = await s.post('loyalty', '/awards', award, 'award-key-1');
    const replayAgain = await s.post('loyalty', '/awards', award, 'award-key-1');
    assert.equal(replayAgain.headers.get('idempotent-replayed'), 'true');
    assert.equal(replayAgain.text, replay.text);

    assert.equal(await points('cust-bob'), before + 52);
    assert.equal(await s.db.loyaltyEntry.count({ where: { orderId } }), 1);
  });

  test('concurrent awards for one order add the points once', async () => {
    const orderId = uniqueId('order');
    const customerId = uniqueId('cust');
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => s.post('loyalty', '/awards', { orderId, customerId, amountMinor: 1000, currency: 'EUR' })),
    );
    assert.equal(answers.filter((a) => a.status === 201).length, 1);
    assert.equal(await points(customerId), 10);
  });

  test('reversing an award takes its points back once', async () => {
    const orderId = uniqueId('order');
    const customerId = uniqueId('cust');
    await s.post('loyalty', '/awards', { orderId, customerId, amountMinor: 2599, currency: 'EUR' });
    const reversed = await s.post('loyalty', `/awards/${orderId}/reverse`);
    assert.equal(reversed.status, 201);
    assert.equal(reversed.body.kind, 'REVERSE');
    assert.equal(reversed.body.points, -25);
    assert.equal((await s.post('loyalty', `/awards/${orderId}/reverse`)).status, 200);
    const account = await s.get('loyalty', `/accounts/${customerId}`);
    assert.equal(account.body.points, 0);
    assert.equal(account.body.entries.length, 2);

    const none = await s.post('loyalty', `/awards/${uniqueId('none')}/reverse`);
    assert.equal(none.status, 404);
  });

  test('an unknown customer has no points; bad awards name the field', async () => {
    assert.deepEqual((await s.get('loyalty', `/accounts/${uniqueId('nobody')}`)).body.entries, []);
    const bad = await s.post('loyalty', '/awards', { orderId: 'o', customerId: 'c', amountMinor: '10', currency: 'EUR' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'amountMinor');
  });
});
