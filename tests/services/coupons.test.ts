import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServiceStack, uniqueId, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

interface LockRequest {
  orderId?: string;
  code: string;
  customerId?: string;
  subtotalMinor: number;
  currency?: string;
}
const lock = (r: LockRequest) =>
  s.post('coupons', '/locks', { orderId: uniqueId('order'), customerId: 'cust-alice', currency: 'EUR', ...r });

async function addCoupon(data: { kind: 'FIXED' | 'PERCENT'; value: number; customerId?: string; validUntil?: Date; minSpendMinor?: number }) {
  const code = uniqueId('CODE').toUpperCase();
  await s.db.coupon.create({ data: { code, currency: 'EUR', ...data } });
  return code;
}
const coupon = (code: string) => s.db.coupon.findUniqueOrThrow({ where: { code } });

describe('coupons', () => {
  test('WELCOME10 takes 10 percent off and is then held for the order', async () => {
    const code = await addCoupon({ kind: 'PERCENT', value: 10, minSpendMinor: 2000 });
    const orderId = uniqueId('order');
    const answer = await lock({ orderId, code, subtotalMinor: 4999 });
    assert.equal(answer.status, 201);
    assert.deepEqual(answer.body, { orderId, code, status: 'LOCKED', discountMinor: 499 });
    assert.deepEqual(await coupon(code).then((c) => [c.status, c.lockedBy]), ['LOCKED', orderId]);

    const again = await lock({ orderId, code, subtotalMinor: 4999 });
    assert.equal(again.status, 200);
    assert.equal(again.body.discountMinor, 499);
  });

  test('the seeded coupons work as described', async () => {
    const welcome = await lock({ code: 'WELCOME10', customerId: 'cust-bob', subtotalMinor: 2000 });
    assert.equal(welcome.status, 201);
    assert.equal(welcome.body.discountMinor, 200);
    const alice = await lock({ code: 'ALICE-5EUR', subtotalMinor: 1999 });
    assert.equal(alice.status, 201);
    assert.equal(alice.body.discountMinor, 500);
  });

  test('two orders racing for one coupon: exactly one gets it', async () => {
    const code = await addCoupon({ kind: 'FIXED', value: 500 });
    const answers = await Promise.all(Array.from({ length: 8 }, () => lock({ code, subtotalMinor: 3000 })));
    const winners = answers.filter((a) => a.status === 201);
    assert.equal(winners.length, 1, answers.map((a) => a.text).join('\n'));
    for (const loser of answers.filter((a) => a.status !== 201)) {
      assert.equal(loser.status, 409);
      assert.equal(loser.body.error.code, 'invalid_coupon');
      assert.equal(loser.body.error.reason, 'already_used');
    }
    assert.equal((await coupon(code)).lockedBy, winners[0]!.body.orderId);
    assert.equal(await s.db.couponLock.count({ where: { code } }), 1);
  });

  test('unlock makes the coupon available to another order', async () => {
    const code = await addCoupon({ kind: 'FIXED', value: 500 });
    const first = uniqueId('order');
    await lock({ orderId: first, code, subtotalMinor: 3000 });
    const unlocked = await s.post('coupons', `/locks/${first}/unlock`);
    assert.equal(unlocked.status, 200);
    assert.equal(unlocked.body.status, 'UNLOCKED');
    assert.equal((await s.post('coupons', `/locks/${first}/unlock`)).status, 200);
    assert.deepEqual(await coupon(code).then((c) => [c.status, c.lockedBy]), ['AVAILABLE', null]);

    const redeemUnlocked = await s.post('coupons', `/locks/${first}/redeem`);
    assert.equal(redeemUnlocked.status, 409);
    assert.equal(redeemUnlocked.body.error.code, 'lock_released');

    const relock = await lock({ orderId: first, code, subtotalMinor: 3000 });
    assert.equal(relock.status, 409);
    assert.equal(relock.body.error.code, 'lock_released');

    assert.equal((await lock({ code, subtotalMinor: 3000 })).status, 201);
  });

  test('redeem uses the coupon up for good', async () => {
    const code = await addCoupon({ kind: 'FIXED', value: 500 });
    const orderId = uniqueId('order');
    await lock({ orderId, code, subtotalMinor: 3000 });
    const redeemed = await s.post('coupons', `/locks/${orderId}/redeem`);
    assert.equal(redeemed.status, 200);
    assert.equal(redeemed.body.status, 'REDEEMED');
    assert.equal((await s.post('coupons', `/locks/${orderId}/redeem`)).status, 200);
    assert.equal((await coupon(code)).status, 'REDEEMED');

    const unlock = await s.post('coupons', `/locks/${orderId}/unlock`);
    assert.equal(unlock.status, 409);
    assert.equal(unlock.body.error.code, 'already_redeemed');

    const other = await lock({ code, subtotalMinor: 3000 });
    assert.equal(other.body.error.reason, 'already_used');
    assert.equal((await s.get('coupons', `/locks/${orderId}`)).body.status, 'REDEEMED');
    assert.equal((await s.get('coupons', `/coupons/${code}`)).body.status, 'REDEEMED');
  });

  test('unlock before lock leaves a tombstone that refuses the late lock', async () => {
    const code = await addCoupon({ kind: 'FIXED', value: 500 });
    const orderId = uniqueId('order');
    const unlocked = await s.post('coupons', `/locks/${orderId}/unlock`);
    assert.equal(unlocked.status, 200);
    assert.deepEqual(unlocked.body, { orderId, code: null, status: 'UNLOCKED', discountMinor: 0, tombstone: true });
    const late = await lock({ orderId, code, subtotalMinor: 3000 });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'lock_released');
    assert.equal((await coupon(code)).status, 'AVAILABLE');
  });

  test('each unusable coupon is refused with its reason, and nothing stays locked', async () => {
    const expired = await addCoupon({ kind: 'FIXED', value: 100, validUntil: new Date(Date.now() - 60_000) });
    const cases: [LockRequest, string][] = [
      [{ code: 'NOPE', subtotalMinor: 3000 }, 'not_found'],
      [{ code: expired, subtotalMinor: 3000 }, 'expired'],
      [{ code: 'ALICE-5EUR', customerId: 'cust-bob', subtotalMinor: 3000 }, 'wrong_customer'],
      [{ code: 'WELCOME10', currency: 'USD', subtotalMinor: 3000 }, 'currency_mismatch'],
      [{ code: 'WELCOME10', subtotalMinor: 1999 }, 'min_spend_not_met'],
    ];
    for (const [request, reason] of cases) {
      const orderId = uniqueId('order');
      const answer = await lock({ ...request, orderId });
      assert.equal(answer.status, 409, `${reason}: ${answer.text}`);
      assert.equal(answer.body.error.code, 'invalid_coupon');
      assert.equal(answer.body.error.reason, reason);
      assert.equal(await s.db.couponLock.count({ where: { orderId } }), 0);
    }
  });

  test('a discount never exceeds the subtotal', async () => {
    const code = await addCoupon({ kind: 'FIXED', value: 500 });
    const answer = await lock({ code, subtotalMinor: 399 });
    assert.equal(answer.body.discountMinor, 399);
  });

  test('redeeming a lock that does not exist is 404; bad input names the field', async () => {
    assert.equal((await s.post('coupons', `/locks/${uniqueId('none')}/redeem`)).status, 404);
    assert.equal((await s.get('coupons', `/locks/${uniqueId('none')}`)).status, 404);
    const bad = await lock({ code: 'WELCOME10', subtotalMinor: -1 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'subtotalMinor');
    const badCurrency = await lock({ code: 'WELCOME10', subtotalMinor: 100, currency: 'eur' });
    assert.equal(badCurrency.body.error.field, 'currency');
  });
});
