import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_CHECKOUT_LINES, MAX_LINE_QUANTITY } from '../../shared/limits.ts';
import { startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

async function addSku(sku: string, onHand: number) {
  await s.db.stockItem.create({ data: { sku, name: sku, priceMinor: 100, currency: 'EUR', onHand } });
}
const stock = (sku: string) => s.db.stockItem.findUniqueOrThrow({ where: { sku } });
const reserve = (orderId: string, lines: { sku: string; quantity: number }[]) =>
  s.post('inventory', '/reservations', { orderId, lines });

describe('inventory', () => {
  test('40 concurrent reservations for a stock of 10 sell exactly 10, never more', async () => {
    const sku = uniqueId('RACE');
    await addSku(sku, 10);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => reserve(`race-${sku}-${i}`, [{ sku, quantity: 1 }])));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((st) => st === 201).length, 10, `statuses: ${statuses}`);
    assert.equal(statuses.filter((st) => st === 409).length, 30);
    for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.body.error.code, 'out_of_stock');
    const item = await stock(sku);
    assert.equal(item.reserved, 10);
    assert.equal(item.onHand, 10);
    assert.equal(await s.db.reservation.count({ where: { orderId: { startsWith: `race-${sku}-` } } }), 10);
  });

  test('reserve then commit takes the stock off the shelf once', async () => {
    const sku = uniqueId('COMMIT');
    await addSku(sku, 5);
    const orderId = uniqueId('order');
    const reserved = await reserve(orderId, [{ sku, quantity: 2 }]);
    assert.equal(reserved.status, 201);
    assert.deepEqual(reserved.body, { orderId, status: 'RESERVED', lines: [{ sku, quantity: 2 }] });
    assert.equal((await stock(sku)).reserved, 2);

    // the same order again (new key) answers with the existing reservation
    const again = await reserve(orderId, [{ sku, quantity: 2 }]);
    assert.equal(again.status, 200);
    assert.equal((await stock(sku)).reserved, 2);

    const committed = await s.post('inventory', `/reservations/${orderId}/commit`);
    assert.equal(committed.status, 200);
    assert.equal(committed.body.status, 'COMMITTED');
    const twice = await s.post('inventory', `/reservations/${orderId}/commit`);
    assert.equal(twice.status, 200);
    assert.deepEqual(await stock(sku).then((i) => [i.onHand, i.reserved]), [3, 0]);

    const release = await s.post('inventory', `/reservations/${orderId}/release`);
    assert.equal(release.status, 409);
    assert.equal(release.body.error.code, 'already_committed');
  });

  test('release returns reserved stock; a second release changes nothing', async () => {
    const sku = uniqueId('REL');
    await addSku(sku, 5);
    const orderId = uniqueId('order');
    await reserve(orderId, [{ sku, quantity: 4 }]);
    const released = await s.post('inventory', `/reservations/${orderId}/release`);
    assert.equal(released.status, 200);
    assert.equal(released.body.status, 'RELEASED');
    assert.equal(released.body.tombstone, undefined);
    assert.equal((await s.post('inventory', `/reservations/${orderId}/release`)).status, 200);
    assert.deepEqual(await stock(sku).then((i) => [i.onHand, i.reserved]), [5, 0]);

    const commit = await s.post('inventory', `/reservations/${orderId}/commit`);
    assert.equal(commit.status, 409);
    assert.equal(commit.body.error.code, 'reservation_released');
  });

  test('release before reserve leaves a tombstone that refuses the late reserve', async () => {
    const sku = uniqueId('TOMB');
    await addSku(sku, 5);
    const orderId = uniqueId('order');
    const released = await s.post('inventory', `/reservations/${orderId}/release`);
    assert.equal(released.status, 200);
    assert.deepEqual(released.body, { orderId, status: 'RELEASED', lines: [], tombstone: true });

    const late = await reserve(orderId, [{ sku, quantity: 1 }]);
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'reservation_released');
    assert.equal((await stock(sku)).reserved, 0);
  });

  test('a reservation is all or nothing across its lines', async () => {
    const plenty = uniqueId('PLENTY');
    const scarce = uniqueId('SCARCE');
    await addSku(plenty, 100);
    await addSku(scarce, 1);
    const orderId = uniqueId('order');
    const answer = await reserve(orderId, [
      { sku: plenty, quantity: 5 },
      { sku: scarce, quantity: 2 },
    ]);
    assert.equal(answer.status, 409);
    assert.deepEqual(
      { ...answer.body.error, message: undefined },
      { code: 'out_of_stock', message: undefined, sku: scarce, requested: 2, available: 1 },
    );
    assert.equal((await stock(plenty)).reserved, 0);
    assert.equal(await s.db.reservation.count({ where: { orderId } }), 0);
    assert.equal((await s.get('inventory', `/reservations/${orderId}`)).status, 404);
  });

  test('an unknown SKU is refused with its name', async () => {
    const answer = await reserve(uniqueId('order'), [{ sku: 'NO-SUCH-SKU', quantity: 1 }]);
    assert.equal(answer.status, 409);
    assert.equal(answer.body.error.code, 'unknown_sku');
    assert.equal(answer.body.error.sku, 'NO-SUCH-SKU');
  });

  test('committing a reservation that does not exist is 404', async () => {
    const commit = await s.post('inventory', `/reservations/${uniqueId('none')}/commit`);
    assert.equal(commit.status, 404);
    assert.equal(commit.body.error.code, 'not_found');
  });

  test('stock reads show available = onHand - reserved', async () => {
    const all = await s.get('inventory', '/stock');
    assert.equal(all.status, 200);
    assert.ok(all.body.some((i: { sku: string }) => i.sku === 'TSHIRT-RED-M'));
    const one = await s.get('inventory', '/stock/HOODIE-GREY-L');
    assert.deepEqual(one.body, {
      sku: 'HOODIE-GREY-L',
      name: 'Hoodie, grey, L',
      priceMinor: 4999,
      currency: 'EUR',
      onHand: 20,
      reserved: 0,
      available: 20,
    });
    assert.equal((await s.get('inventory', '/stock/NOPE')).status, 404);
  });

  test('invalid reservations name the failing field', async () => {
    const zero = await reserve(uniqueId('order'), [{ sku: 'MUG-LOGO', quantity: 0 }]);
    assert.equal(zero.status, 400);
    assert.equal(zero.body.error.code, 'invalid_request');
    assert.equal(zero.body.error.field, 'lines.0.quantity');

    const duplicate = await reserve(uniqueId('order'), [
      { sku: 'MUG-LOGO', quantity: 1 },
      { sku: 'MUG-LOGO', quantity: 1 },
    ]);
    assert.equal(duplicate.body.error.field, 'lines.1.sku');

    const missing = await s.post('inventory', '/reservations', { lines: [] });
    assert.equal(missing.body.error.field, 'orderId');
    assert.deepEqual(missing.body.error.fields, ['orderId', 'lines']);
  });

  test('the database refuses stock that would go negative or be over-reserved', async () => {
    const sku = uniqueId('CHECK');
    await addSku(sku, 1);
    await assert.rejects(s.db.$executeRaw`UPDATE inventory_stock SET reserved = 2 WHERE sku = ${sku}`);
    await assert.rejects(s.db.$executeRaw`UPDATE inventory_stock SET on_hand = -1, reserved = 0 WHERE sku = ${sku}`);
  });

  test('the catalogue answers each known SKU at its price and currency, and lists the unknown ones', async () => {
    const answer = await s.get('inventory', '/catalogue?sku=HOODIE-GREY-L&sku=NOPE&sku=MUG-LOGO');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, {
      items: [
        { sku: 'HOODIE-GREY-L', name: 'Hoodie, grey, L', priceMinor: 4999, currency: 'EUR' },
        { sku: 'MUG-LOGO', name: 'Mug with logo', priceMinor: 1299, currency: 'EUR' },
      ],
      unknown: ['NOPE'],
    });
    const one = await s.get('inventory', '/catalogue?sku=STICKER-PACK');
    assert.deepEqual(one.body.items.map((i: { sku: string }) => i.sku), ['STICKER-PACK']);
  });

  test('a catalogue look-up needs 1 to 50 SKUs and the service key', async () => {
    const none = await s.get('inventory', '/catalogue');
    assert.equal(none.status, 400);
    assert.equal(none.body.error.field, 'sku');
    const query = Array.from({ length: MAX_CHECKOUT_LINES + 1 }, (_, i) => `sku=S${i}`).join('&');
    assert.equal((await s.get('inventory', `/catalogue?${query}`)).status, 400);
    const anonymous = await s.request('inventory', 'GET', '/catalogue?sku=MUG-LOGO', undefined, { authorization: null });
    assert.equal(anonymous.status, 401);
  });

  test('a reservation line above the shared quantity limit is refused', async () => {
    const answer = await reserve(uniqueId('order'), [{ sku: 'MUG-LOGO', quantity: MAX_LINE_QUANTITY + 1 }]);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'lines.0.quantity');
  });
});
