import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack();
});
after(() => s.stop());

const HOUR = 3_600_000;

async function newCampaign(overrides: Record<string, unknown> = {}) {
  const campaignId = uniqueId('camp');
  const answer = await s.post('coupons', '/campaigns', {
    campaignId,
    name: 'Black Friday',
    totalQuota: 100,
    perCustomerLimit: 1,
    validFrom: new Date(Date.now() - HOUR).toISOString(),
    validUntil: new Date(Date.now() + 24 * HOUR).toISOString(),
    kind: 'FIXED',
    value: 500,
    currency: 'EUR',
    minSpendMinor: 1000,
    ...overrides,
  });
  assert.equal(answer.status, 201, answer.text);
  return campaignId;
}

// 200 reservations at once queue on the campaign's row lock: on a busy machine the last waits
// well past the harness's usual 10 s. What is checked is the count, not the speed.
const reserve = (campaignId: string, customerId: string, requestId = uniqueId('req')) =>
  s.post('coupons', `/campaigns/${campaignId}/quota-reservations`, { requestId, customerId }, undefined, { timeoutMs: 60_000 });
const grant = (requestId: string, campaignId: string, customerId: string, key?: string, timeoutMs?: number) =>
  s.post('coupons', '/wallet/grants', { requestId, campaignId, customerId }, key, { timeoutMs });
const campaignRow = (id: string) => s.db.couponCampaign.findUniqueOrThrow({ where: { id } });

/** The campaign's counters agree with its reservations and with the customers' shares. */
async function assertCountersConsistent(campaignId: string) {
  const campaign = await campaignRow(campaignId);
  const byStatus = async (status: 'RESERVED' | 'CONFIRMED' | 'RELEASED') =>
    s.db.couponQuotaReservation.count({ where: { campaignId, status } });
  assert.equal(campaign.reserved, await byStatus('RESERVED'), 'reserved');
  assert.equal(campaign.confirmed, await byStatus('CONFIRMED'), 'confirmed');
  assert.equal(campaign.released, await byStatus('RELEASED'), 'released');
  const shares = await s.db.couponCampaignCustomer.aggregate({ where: { campaignId }, _sum: { reserved: true, confirmed: true } });
  assert.equal(shares._sum.reserved ?? 0, campaign.reserved, 'customers reserved');
  assert.equal(shares._sum.confirmed ?? 0, campaign.confirmed, 'customers confirmed');
  assert.ok(campaign.reserved + campaign.confirmed <= campaign.totalQuota);
}

describe('coupon campaigns', () => {
  test('a campaign is created once and reports its quota', async () => {
    const campaignId = await newCampaign();
    const again = await s.post('coupons', '/campaigns', {
      campaignId, name: 'other', totalQuota: 5, perCustomerLimit: 1, kind: 'PERCENT', value: 10, currency: 'EUR', minSpendMinor: 0,
      validFrom: new Date().toISOString(), validUntil: new Date(Date.now() + HOUR).toISOString(),
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.totalQuota, 100);
    const shown = await s.get('coupons', `/campaigns/${campaignId}`);
    assert.equal(shown.status, 200);
    assert.deepEqual(
      [shown.body.reserved, shown.body.confirmed, shown.body.released, shown.body.remaining, shown.body.kind, shown.body.value],
      [0, 0, 0, 100, 'FIXED', 500],
    );
    assert.equal((await s.get('coupons', `/campaigns/${uniqueId('none')}`)).status, 404);
    const bad = await s.post('coupons', '/campaigns', { ...shown.body, campaignId: uniqueId('camp'), validUntil: shown.body.validFrom });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'validUntil');
  });

  test('200 concurrent reservations for a quota of 100: exactly 100 reserved, the rest quota_exhausted', async () => {
    const campaignId = await newCampaign({ totalQuota: 100 });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => reserve(campaignId, `cust-${i}`)));
    const reserved = answers.filter((a) => a.status === 201);
    assert.equal(reserved.length, 100, answers.filter((a) => a.status !== 201 && a.status !== 409).map((a) => a.text).join('\n'));
    for (const a of reserved) assert.equal(a.body.status, 'RESERVED');
    for (const refused of answers.filter((a) => a.status !== 201)) {
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.error.code, 'quota_exhausted');
    }
    const campaign = await campaignRow(campaignId);
    assert.deepEqual([campaign.reserved, campaign.confirmed], [100, 0]);
    assert.equal(await s.db.couponQuotaReservation.count({ where: { campaignId } }), 100);
    assert.equal((await s.get('coupons', `/campaigns/${campaignId}`)).body.remaining, 0);
    await assertCountersConsistent(campaignId);
  });

  test('the per-customer limit holds under concurrency', async () => {
    const campaignId = await newCampaign({ totalQuota: 50, perCustomerLimit: 2 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => reserve(campaignId, 'cust-greedy')));
    assert.equal(answers.filter((a) => a.status === 201).length, 2);
    for (const refused of answers.filter((a) => a.status !== 201)) {
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.error.code, 'customer_limit_reached');
    }
    const share = await s.db.couponCampaignCustomer.findUniqueOrThrow({
      where: { campaignId_customerId: { campaignId, customerId: 'cust-greedy' } },
    });
    assert.equal(share.reserved, 2);
    assert.equal((await reserve(campaignId, 'cust-other')).status, 201);
    await assertCountersConsistent(campaignId);
  });

  test('the same requestId reserves once; confirm is idempotent and keeps the quota', async () => {
    const campaignId = await newCampaign({ totalQuota: 1 });
    const requestId = uniqueId('req');
    assert.equal((await reserve(campaignId, 'cust-a', requestId)).status, 201);
    const again = await reserve(campaignId, 'cust-a', requestId);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'RESERVED');
    const confirmed = await s.post('coupons', `/quota-reservations/${requestId}/confirm`);
    assert.equal(confirmed.status, 200);
    assert.equal(confirmed.body.status, 'CONFIRMED');
    assert.equal((await s.post('coupons', `/quota-reservations/${requestId}/confirm`)).status, 200);
    const release = await s.post('coupons', `/quota-reservations/${requestId}/release`);
    assert.equal(release.status, 409);
    assert.equal(release.body.error.code, 'already_confirmed');
    assert.equal((await reserve(campaignId, 'cust-b')).body.error.code, 'quota_exhausted');
    assert.deepEqual(await campaignRow(campaignId).then((c) => [c.reserved, c.confirmed]), [0, 1]);
    await assertCountersConsistent(campaignId);
  });

  test('release gives the quota back, to another customer and the same one', async () => {
    const campaignId = await newCampaign({ totalQuota: 1 });
    const requestId = uniqueId('req');
    await reserve(campaignId, 'cust-a', requestId);
    assert.equal((await reserve(campaignId, 'cust-b')).body.error.code, 'quota_exhausted');
    const released = await s.post('coupons', `/quota-reservations/${requestId}/release`);
    assert.equal(released.status, 200);
    assert.equal(released.body.status, 'RELEASED');
    assert.equal((await s.post('coupons', `/quota-reservations/${requestId}/release`)).status, 200);
    assert.deepEqual(await campaignRow(campaignId).then((c) => [c.reserved, c.released]), [0, 1]);

    const confirm = await s.post('coupons', `/quota-reservations/${requestId}/confirm`);
    assert.equal(confirm.status, 409);
    assert.equal(confirm.body.error.code, 'reservation_released');
    assert.equal((await reserve(campaignId, 'cust-a', requestId)).body.error.code, 'reservation_released');
    assert.equal((await reserve(campaignId, 'cust-a')).status, 201);
    await assertCountersConsistent(campaignId);
  });

  test('release before reserve leaves a tombstone that refuses the late reservation', async () => {
    const campaignId = await newCampaign();
    const requestId = uniqueId('req');
    const released = await s.post('coupons', `/quota-reservations/${requestId}/release`);
    assert.equal(released.status, 200);
    assert.deepEqual(released.body, { requestId, campaignId: null, customerId: null, status: 'RELEASED', tombstone: true });
    const late = await reserve(campaignId, 'cust-a', requestId);
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'reservation_released');
    assert.deepEqual(await campaignRow(campaignId).then((c) => [c.reserved, c.released]), [0, 0]);
  });

  test('outside the validity window reservations are refused as campaign_closed', async () => {
    const ended = await newCampaign({ validFrom: new Date(Date.now() - 2 * HOUR).toISOString(), validUntil: new Date(Date.now() - HOUR).toISOString() });
    const future = await newCampaign({ validFrom: new Date(Date.now() + HOUR).toISOString(), validUntil: new Date(Date.now() + 2 * HOUR).toISOString() });
    for (const campaignId of [ended, future]) {
      const requestId = uniqueId('req');
      const answer = await reserve(campaignId, 'cust-a', requestId);
      assert.equal(answer.status, 409, answer.text);
      assert.equal(answer.body.error.code, 'campaign_closed');
      assert.equal(await s.db.couponQuotaReservation.count({ where: { requestId } }), 0);
      assert.equal((await campaignRow(campaignId)).reserved, 0);
    }
    assert.equal((await reserve(uniqueId('none'), 'cust-a')).status, 404);
  });
});

describe('wallet grants', () => {
  test('a grant is idempotent by requestId and lands in the wallet; GET is 404 before and 200 after', async () => {
    const campaignId = await newCampaign();
    const requestId = uniqueId('req');
    const customerId = uniqueId('cust');
    assert.equal((await s.get('coupons', `/wallet/grants/${requestId}`)).status, 404);
    await reserve(campaignId, customerId, requestId);

    const first = await grant(requestId, campaignId, customerId);
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.customerId, customerId);
    assert.equal(first.body.campaignId, campaignId);
    assert.match(first.body.couponCode, /^CAMP[0-9A-F]+-[0-9A-F]{12}$/);
    const again = await grant(requestId, campaignId, customerId);
    assert.equal(again.status, 200);
    assert.equal(again.body.couponCode, first.body.couponCode);

    const found = await s.get('coupons', `/wallet/grants/${requestId}`);
    assert.equal(found.status, 200);
    assert.equal(found.body.couponCode, first.body.couponCode);

    const coupon = await s.db.coupon.findUniqueOrThrow({ where: { code: first.body.couponCode } });
    assert.deepEqual(
      [coupon.customerId, coupon.campaignId, coupon.kind, coupon.value, coupon.currency, coupon.minSpendMinor, coupon.status],
      [customerId, campaignId, 'FIXED', 500, 'EUR', 1000, 'AVAILABLE'],
    );
    assert.equal(coupon.validUntil?.getTime(), (await campaignRow(campaignId)).validUntil.getTime());
    assert.equal(await s.db.couponGrant.count({ where: { requestId } }), 1);

    const wallet = await s.get('coupons', `/customers/${customerId}/wallet`);
    assert.equal(wallet.status, 200);
    assert.deepEqual(wallet.body.coupons.map((c: { code: string }) => c.code), [first.body.couponCode]);

    // a granted reservation keeps its quota: releasing it is refused, confirming it is the way on
    const release = await s.post('coupons', `/quota-reservations/${requestId}/release`);
    assert.equal(release.status, 409);
    assert.equal(release.body.error.code, 'already_granted');
    assert.equal((await s.post('coupons', `/quota-reservations/${requestId}/confirm`)).body.status, 'CONFIRMED');
    assert.equal((await grant(requestId, campaignId, customerId)).status, 200);
    await assertCountersConsistent(campaignId);
  });

  test('a grant that times out after taking effect is found by GET, and its retry gets the same coupon', async () => {
    const campaignId = await newCampaign();
    const requestId = uniqueId('req');
    const customerId = uniqueId('cust');
    await reserve(campaignId, customerId, requestId);
    const key = uniqueId('key');

    assert.equal((await s.request('coupons', 'PUT', '/_faults', { hangAfterMs: 3_000, path: '/wallet/grants' })).status, 200);
    try {
      await assert.rejects(grant(requestId, campaignId, customerId, key, 300), (err: Error) => err.name === 'TimeoutError');
    } finally {
      await s.request('coupons', 'DELETE', '/_faults');
    }
    await until(async () => (await s.get('coupons', `/wallet/grants/${requestId}`)).status === 200);
    const found = await s.get('coupons', `/wallet/grants/${requestId}`);

    const replay = await grant(requestId, campaignId, customerId, key);
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.body.couponCode, found.body.couponCode);
    const fresh = await grant(requestId, campaignId, customerId);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.couponCode, found.body.couponCode);
    assert.equal(await s.db.coupon.count({ where: { customerId } }), 1);
  });

  test('a grant without a quota reservation is refused and creates nothing', async () => {
    const campaignId = await newCampaign();
    const customerId = uniqueId('cust');
    const none = await grant(uniqueId('req'), campaignId, customerId);
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'no_quota_reservation');

    const releasedId = uniqueId('req');
    await reserve(campaignId, customerId, releasedId);
    await s.post('coupons', `/quota-reservations/${releasedId}/release`);
    const afterRelease = await grant(releasedId, campaignId, customerId);
    assert.equal(afterRelease.status, 409);
    assert.equal(afterRelease.body.error.code, 'no_quota_reservation');

    const otherCustomer = uniqueId('req');
    await reserve(campaignId, customerId, otherCustomer);
    assert.equal((await grant(otherCustomer, campaignId, 'cust-someone-else')).body.error.code, 'no_quota_reservation');

    assert.equal(await s.db.coupon.count({ where: { customerId } }), 0);
    assert.equal((await s.get('coupons', `/customers/${customerId}/wallet`)).body.coupons.length, 0);
  });

  test("a granted coupon is locked by the customer's checkout and refused to anyone else", async () => {
    const campaignId = await newCampaign({ kind: 'PERCENT', value: 20, minSpendMinor: 0 });
    const requestId = uniqueId('req');
    const customerId = uniqueId('cust');
    await reserve(campaignId, customerId, requestId);
    const { couponCode } = (await grant(requestId, campaignId, customerId)).body;

    const stranger = await s.post('coupons', '/locks', { orderId: uniqueId('order'), code: couponCode, customerId: 'cust-bob', subtotalMinor: 5000, currency: 'EUR' });
    assert.equal(stranger.status, 409);
    assert.equal(stranger.body.error.reason, 'wrong_customer');

    const orderId = uniqueId('order');
    const locked = await s.post('coupons', '/locks', { orderId, code: couponCode, customerId, subtotalMinor: 5000, currency: 'EUR' });
    assert.equal(locked.status, 201, locked.text);
    assert.deepEqual(locked.body, { orderId, code: couponCode, status: 'LOCKED', discountMinor: 1000 });
    assert.equal((await s.post('coupons', `/locks/${orderId}/redeem`)).body.status, 'REDEEMED');
    const wallet = await s.get('coupons', `/customers/${customerId}/wallet`);
    assert.equal(wallet.body.coupons[0].status, 'REDEEMED');
  });
});
