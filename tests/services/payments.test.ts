import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createDb } from '../../lib/db.ts';
import { createPaymentsApp } from '../../services/payments/app.ts';
import { listen } from '../../services/common/server.ts';
import { authFor, TEST_PSP_API_KEYS, TEST_SERVICE_KEYS } from '../support/service-keys.ts';
import { CARDS, startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspTimeoutCardMs: 300, pspRequestTimeoutMs: 2_000, pspChaos: { processingDelayMs: 100 } });
});
after(() => s.stop());

/** Authorizes with a test card's token, as the checkout does: the number itself never reaches payments. */
const authorize = async (orderId: string, card: string = CARDS.approve, amountMinor = 5297, key?: string) =>
  authorizeWith(orderId, await s.paymentMethod(card), amountMinor, key);
const authorizeWith = (orderId: string, paymentMethod: unknown, amountMinor = 5297, key?: string) =>
  s.post('payments', '/payments/authorize', { orderId, amountMinor, currency: 'EUR', paymentMethod }, key);
/** The active query: no Idempotency-Key, each call reads the provider afresh. */
const sync = (orderId: string) => s.post('payments', `/payments/${orderId}/sync`, {}, null);
const ours = (orderId: string) => s.db.payment.findUniqueOrThrow({ where: { orderId } });

/** Runs `work` with PSP chaos knobs set, e.g. a slow decision so a test can act while a payment is pending. */
async function withChaos(knobs: Record<string, unknown>, work: () => Promise<void>) {
  await s.request('psp', 'PUT', '/v1/chaos', knobs);
  try {
    await work();
  } finally {
    await s.request('psp', 'DELETE', '/v1/chaos');
  }
}
const SLOW = { processingDelayMs: 1_000 };

/** Syncs until our record reaches `status` (the provider decides asynchronously). */
async function settlesAs(orderId: string, status: string) {
  await until(async () => (await sync(orderId)).body.status === status, 5_000);
}

async function authorized(orderId: string, amountMinor = 5297) {
  assert.equal((await authorize(orderId, CARDS.approve, amountMinor)).status, 202);
  await settlesAs(orderId, 'AUTHORIZED');
}

async function captured(orderId: string, amountMinor = 5297) {
  await authorized(orderId, amountMinor);
  await s.post('payments', `/payments/${orderId}/capture`);
  await settlesAs(orderId, 'CAPTURED');
}

/** What the provider recorded for an order: its payments and their money movements. */
async function atPsp(orderId: string) {
  const payments = await s.db.pspPayment.findMany({ where: { merchantReference: orderId }, include: { transactions: true } });
  const transactions = payments.flatMap((p) => p.transactions.map((t) => t.type));
  return { payments, transactions, captures: transactions.filter((t) => t === 'CAPTURE').length };
}

describe('payments', () => {
  test('an approved card is accepted as AUTHORIZATION_PENDING, authorized once at the provider, and sync records it', async () => {
    const orderId = uniqueId('order');
    const answer = await authorize(orderId);
    assert.equal(answer.status, 202);
    assert.equal(answer.body.paymentId, `pay_${orderId}`);
    assert.equal(answer.body.status, 'AUTHORIZATION_PENDING');
    assert.equal(answer.body.amountMinor, 5297);

    await until(async () => (await atPsp(orderId)).payments[0]?.status === 'AUTHORIZED');
    assert.equal((await ours(orderId)).status, 'AUTHORIZATION_PENDING'); // nobody told us yet
    const synced = await sync(orderId);
    assert.equal(synced.status, 200);
    assert.equal(synced.body.status, 'AUTHORIZED');
    assert.equal((await ours(orderId)).status, 'AUTHORIZED');

    const again = await authorize(orderId); // another key: answered from our record
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'AUTHORIZED');
    assert.equal(again.body.pspPaymentId, answer.body.pspPaymentId);
    assert.deepEqual((await atPsp(orderId)).transactions, ['AUTHORIZATION']);
  });

  test('sync needs no Idempotency-Key, is never replayed, and reflects the provider', async () => {
    const orderId = uniqueId('order');
    let first: Awaited<ReturnType<typeof sync>> | undefined;
    await withChaos(SLOW, async () => {
      await authorize(orderId);
      first = await s.post('payments', `/payments/${orderId}/sync`, {}, 'same-key');
    });
    await until(async () => (await atPsp(orderId)).payments[0]?.status === 'AUTHORIZED', 5_000);
    const second = await s.post('payments', `/payments/${orderId}/sync`, {}, 'same-key');
    assert.equal(second.headers.get('idempotent-replayed'), null);
    assert.equal(first!.body.status, 'AUTHORIZATION_PENDING');
    assert.equal(second.body.status, 'AUTHORIZED');
    assert.equal((await sync(uniqueId('none'))).status, 404);
    for (const field of ['paymentId', 'orderId', 'status', 'amountMinor', 'capturedMinor', 'refundedMinor', 'currency']) {
      assert.ok(field in second.body, field);
    }
  });

  test('a declined card is DECLINED once decided, and a repeat authorize gives 402', async () => {
    const orderId = uniqueId('order');
    assert.equal((await authorize(orderId, CARDS.declined)).status, 202);
    await settlesAs(orderId, 'DECLINED');
    const row = await ours(orderId);
    assert.equal(row.declineCode, 'card_declined');

    const repeat = await authorize(orderId, CARDS.declined);
    assert.equal(repeat.status, 402);
    assert.equal(repeat.body.error.code, 'payment_declined');
    assert.equal(repeat.body.error.declineCode, 'card_declined');
    const replay = await authorize(orderId, CARDS.declined, 5297, `k-${orderId}`);
    const replayed = await authorize(orderId, CARDS.declined, 5297, `k-${orderId}`);
    assert.equal(replayed.status, 402);
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    assert.equal(replayed.text, replay.text);
    assert.equal((await atPsp(orderId)).payments.length, 1);

    const funds = uniqueId('order');
    await authorize(funds, CARDS.insufficientFunds);
    await settlesAs(funds, 'DECLINED');
    assert.equal((await ours(funds)).declineCode, 'insufficient_funds');
  });

  test('capture called twice with different keys captures exactly once at the provider', async () => {
    const orderId = uniqueId('order');
    await authorized(orderId);
    const first = await s.post('payments', `/payments/${orderId}/capture`, {}, `capture-a-${orderId}`);
    const second = await s.post('payments', `/payments/${orderId}/capture`, {}, `capture-b-${orderId}`);
    assert.equal(first.status, 202);
    assert.equal(first.body.status, 'CAPTURE_PENDING');
    assert.ok([200, 202].includes(second.status), second.text); // our record, or the provider's already-capturing answer
    await settlesAs(orderId, 'CAPTURED');
    assert.equal((await ours(orderId)).capturedMinor, 5297);
    const third = await s.post('payments', `/payments/${orderId}/capture`);
    assert.equal(third.status, 200);
    assert.equal(third.body.status, 'CAPTURED');
    assert.equal((await atPsp(orderId)).captures, 1);
  });

  test('concurrent captures with different keys still capture once', async () => {
    const orderId = uniqueId('order');
    await authorized(orderId);
    const answers = await Promise.all(Array.from({ length: 6 }, () => s.post('payments', `/payments/${orderId}/capture`)));
    assert.ok(answers.some((a) => a.status === 202));
    for (const a of answers) assert.ok([200, 202, 503].includes(a.status), a.text); // 503 = the provider is still busy with the same capture
    await settlesAs(orderId, 'CAPTURED');
    assert.equal((await atPsp(orderId)).captures, 1);
  });

  test('capture before the authorization is known asks the provider first', async () => {
    const orderId = uniqueId('order');
    await withChaos(SLOW, async () => {
      await authorize(orderId);
      const early = await s.post('payments', `/payments/${orderId}/capture`);
      assert.equal(early.status, 409);
      assert.equal(early.body.error.code, 'illegal_transition');
    });
    await until(async () => (await atPsp(orderId)).payments[0]?.status === 'AUTHORIZED', 5_000);
    const now = await s.post('payments', `/payments/${orderId}/capture`); // our record still says pending
    assert.equal(now.status, 202);
    await settlesAs(orderId, 'CAPTURED');
    assert.equal((await atPsp(orderId)).captures, 1);
  });

  test('void before authorize leaves a tombstone; the late authorize is refused and nothing is authorized', async () => {
    const orderId = uniqueId('order');
    const voided = await s.post('payments', `/payments/${orderId}/void`);
    assert.equal(voided.status, 200);
    assert.equal(voided.body.status, 'VOIDED');
    assert.equal(voided.body.tombstone, true);

    const late = await authorize(orderId);
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'payment_voided');
    assert.equal((await atPsp(orderId)).payments.length, 0);
  });

  test('a void that lands while the authorize is at the provider undoes that authorization', async () => {
    const orderId = uniqueId('order');
    // the provider takes the payment, then holds its answer: our void arrives in that window
    await s.request('psp', 'PUT', '/_faults', { hangAfterMs: 1_000, path: '/v1/payments' });
    try {
      const authorizing = authorize(orderId);
      await until(async () => (await atPsp(orderId)).payments.length === 1);
      const voided = await s.post('payments', `/payments/${orderId}/void`);
      assert.equal(voided.body.tombstone, true);
      const late = await authorizing;
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'payment_voided');
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // past any pending decision
    const psp = await atPsp(orderId);
    assert.equal(psp.payments[0]!.status, 'VOIDED');
    // voided while pending (nothing moved) or after the authorization (then undone)
    assert.ok(['', 'AUTHORIZATION,VOID'].includes(psp.transactions.sort().join(',')), psp.transactions.join(','));
  });

  test('a void racing an authorize the provider cannot stop any more is enforced by sync once it is authorized', async () => {
    const orderId = uniqueId('order');
    await s.request('psp', 'PUT', '/v1/chaos', { paidAfterTimeout: true, lateDecisionMs: 1_500, processingDelayMs: 100 });
    await s.request('psp', 'PUT', '/_faults', { hangAfterMs: 300, path: '/v1/payments' });
    try {
      const authorizing = authorize(orderId);
      await until(async () => (await atPsp(orderId)).payments.length === 1);
      assert.equal((await s.post('payments', `/payments/${orderId}/void`)).body.tombstone, true);
      const late = await authorizing;
      assert.equal(late.status, 409);
      assert.equal(late.body.error.code, 'payment_processing');
      await s.request('psp', 'DELETE', '/_faults');

      await until(async () => (await atPsp(orderId)).payments[0]?.status === 'AUTHORIZED', 5_000);
      const synced = await sync(orderId); // what a payment.authorized webhook prompts
      assert.equal(synced.body.status, 'VOIDED');
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
      await s.request('psp', 'DELETE', '/v1/chaos');
    }
    const psp = await atPsp(orderId);
    assert.equal(psp.payments[0]!.status, 'VOIDED');
    assert.deepEqual(psp.transactions.sort(), ['AUTHORIZATION', 'VOID']);
    assert.equal((await authorize(orderId)).body.error.code, 'payment_voided');
  });

  test('void after authorize voids at the provider; capture is then refused', async () => {
    const orderId = uniqueId('order');
    await authorized(orderId);
    const voided = await s.post('payments', `/payments/${orderId}/void`);
    assert.equal(voided.status, 200);
    assert.equal(voided.body.status, 'VOIDED');
    assert.equal((await s.post('payments', `/payments/${orderId}/void`)).status, 200);
    assert.deepEqual((await atPsp(orderId)).transactions.sort(), ['AUTHORIZATION', 'VOID']);

    const capture = await s.post('payments', `/payments/${orderId}/capture`);
    assert.equal(capture.status, 409);
    assert.equal(capture.body.error.code, 'illegal_transition');
    assert.equal((await authorize(orderId)).body.error.code, 'payment_voided');
  });

  test('void of a pending authorization stops it at the provider', async () => {
    const orderId = uniqueId('order');
    await withChaos({ processingDelayMs: 500 }, async () => {
      await authorize(orderId);
      const voided = await s.post('payments', `/payments/${orderId}/void`);
      assert.equal(voided.status, 200);
      assert.equal(voided.body.status, 'VOIDED');
    });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const psp = await atPsp(orderId);
    assert.equal(psp.payments[0]!.status, 'VOIDED');
    assert.deepEqual(psp.transactions, []);
  });

  test('void after capture is refused; void of a declined payment changes nothing', async () => {
    const capturing = uniqueId('order');
    await authorized(capturing);
    await s.post('payments', `/payments/${capturing}/capture`);
    const voidCapturing = await s.post('payments', `/payments/${capturing}/void`);
    assert.equal(voidCapturing.status, 409);
    assert.equal(voidCapturing.body.error.code, 'already_captured');

    // declined at the provider while our record still says pending
    const declined = uniqueId('order');
    await authorize(declined, CARDS.declined);
    await until(async () => (await atPsp(declined)).payments[0]?.status === 'DECLINED');
    const voidDeclined = await s.post('payments', `/payments/${declined}/void`);
    assert.equal(voidDeclined.status, 200);
    assert.equal(voidDeclined.body.status, 'DECLINED');
    assert.equal((await s.post('payments', `/payments/${uniqueId('none')}/capture`)).status, 404);
  });

  test('paid after our timeout: void is 409 payment_processing, not replayed, and succeeds once the provider decides', async () => {
    const orderId = uniqueId('order');
    await s.request('psp', 'PUT', '/v1/chaos', { paidAfterTimeout: true, lateDecisionMs: 1_500, processingDelayMs: 100 });
    try {
      await authorize(orderId);
      const key = `void-${orderId}`;
      const refused = await s.post('payments', `/payments/${orderId}/void`, {}, key);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'payment_processing');
      assert.equal((await ours(orderId)).status, 'AUTHORIZATION_PENDING');
      await settlesAs(orderId, 'AUTHORIZED');
      const voided = await s.post('payments', `/payments/${orderId}/void`, {}, key);
      assert.equal(voided.status, 200);
      assert.equal(voided.headers.get('idempotent-replayed'), null);
      assert.equal(voided.body.status, 'VOIDED');
    } finally {
      await s.request('psp', 'DELETE', '/v1/chaos');
    }
    assert.deepEqual((await atPsp(orderId)).transactions.sort(), ['AUTHORIZATION', 'VOID']);
  });

  test('payments changed since a moment are listed for reconciliation', async () => {
    const since = new Date();
    const orderId = uniqueId('order');
    await authorize(orderId);
    const listed = await s.get('payments', `/payments?updatedSince=${since.toISOString()}`);
    assert.equal(listed.status, 200);
    assert.ok(listed.body.payments.some((p: { orderId: string }) => p.orderId === orderId));
    const later = await s.get('payments', `/payments?updatedSince=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.deepEqual(later.body, { payments: [], nextCursor: null });
    assert.equal((await s.get('payments', '/payments?updatedSince=soon')).status, 400);
    assert.equal((await s.get('payments', `/payments?updatedSince=${since.toISOString()}&limit=501`)).status, 400);
  });

  test('the list comes in pages in order id order; a payment that changes while someone pages keeps its place', async () => {
    const since = new Date();
    const prefix = uniqueId('order-page');
    const orderIds = ['a', 'b', 'c', 'd', 'e'].map((key) => `${prefix}-${key}`);
    // rows straight into the table: the list is a read, and five authorizations would only be slower
    for (const [i, orderId] of orderIds.entries()) {
      await s.db.payment.create({ data: { id: `pay_${orderId}`, orderId, amountMinor: 1000 + i, currency: 'EUR', status: 'AUTHORIZED', updatedAt: since } });
    }
    const page = async (after: string | null) => {
      const answer = await s.get('payments', `/payments?updatedSince=${since.toISOString()}&limit=2${after === null ? '' : `&after=${after}`}`);
      assert.equal(answer.status, 200);
      // other tests of this file write payments too: only this test's are ours to count
      return { orderIds: answer.body.payments.map((p: { orderId: string }) => p.orderId) as string[], nextCursor: answer.body.nextCursor as string | null };
    };
    const seen: string[] = [];
    let after: string | null = `${prefix}-`;
    const first = await page(after);
    assert.deepEqual(first.orderIds, orderIds.slice(0, 2));
    assert.equal(first.nextCursor, orderIds[1]);
    // the first page's payments change meanwhile: the list is keyed by order id, so they do not come again
    await s.db.payment.updateMany({ where: { orderId: { in: first.orderIds } }, data: { status: 'CAPTURED', capturedMinor: 1000 } });
    seen.push(...first.orderIds);
    after = first.nextCursor;
    while (after !== null && after.startsWith(prefix)) {
      const next = await page(after);
      seen.push(...next.orderIds.filter((id) => id.startsWith(prefix)));
      after = next.nextCursor;
    }
    assert.deepEqual(seen, orderIds, 'each payment once, in order');

    const lookup = await s.post('payments', '/payments/lookup', { orderIds: [orderIds[3], 'order-nobody-has', orderIds[0]] }, null);
    assert.equal(lookup.status, 200);
    assert.deepEqual(lookup.body.payments.map((p: { orderId: string; status: string }) => [p.orderId, p.status]), [[orderIds[3], 'AUTHORIZED'], [orderIds[0], 'CAPTURED']]);
    assert.equal((await s.post('payments', '/payments/lookup', { orderIds: Array.from({ length: 501 }, (_, i) => `o-${i}`) }, null)).status, 400);
  });

  test('a provider failure is 503 psp_unavailable, not stored, and the retry with the same key succeeds', async () => {
    const orderId = uniqueId('order');
    await s.request('psp', 'PUT', '/_faults', { errorRate: 1 });
    try {
      const failed = await authorize(orderId, CARDS.approve, 5297, `auth-${orderId}`);
      assert.equal(failed.status, 503);
      assert.equal(failed.body.error.code, 'psp_unavailable');
      assert.equal(await s.db.payment.count({ where: { orderId } }), 0);
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
    }
    const retried = await authorize(orderId, CARDS.approve, 5297, `auth-${orderId}`);
    assert.equal(retried.status, 202);
    assert.equal(retried.headers.get('idempotent-replayed'), null);

    await s.request('psp', 'PUT', '/_faults', { errorRate: 1 });
    try {
      const unsynced = await sync(orderId);
      assert.equal(unsynced.status, 503);
      assert.equal(unsynced.body.error.code, 'psp_unavailable');
    } finally {
      await s.request('psp', 'DELETE', '/_faults');
    }
  });

  test('the timeout card makes the provider answer 504 without authorizing: 503 psp_unavailable', async () => {
    const orderId = uniqueId('order');
    const answer = await authorize(orderId, CARDS.timeout);
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error.code, 'psp_unavailable');
    assert.equal((await atPsp(orderId)).payments.length, 0);
    assert.equal(await s.db.payment.count({ where: { orderId } }), 0);
  });

  test('an unreachable provider is 503 psp_unavailable', async () => {
    const port = await freePort();
    const db = createDb(s.databaseUrl);
    const app = createPaymentsApp(db, {
      acceptedKeys: TEST_SERVICE_KEYS,
      pspUrl: `http://127.0.0.1:${port}`,
      pspApiKey: TEST_PSP_API_KEYS[0],
      pspTimeoutMs: 1_000,
    });
    const server = await listen(app, 0, '127.0.0.1');
    const call = async (path: string, body: unknown) => {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { ...authFor('payments'), 'content-type': 'application/json', 'idempotency-key': uniqueId('unreachable') },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    };
    try {
      const paymentMethod = await s.paymentMethod(CARDS.approve);
      const authorizing = await call('/payments/authorize', { orderId: 'o-unreachable', amountMinor: 100, currency: 'EUR', paymentMethod });
      assert.equal(authorizing.status, 503);
      assert.equal(authorizing.body.error.code, 'psp_unavailable');

      const known = uniqueId('order');
      await authorize(known); // through the real provider, so there is something to sync
      const syncing = await call(`/payments/${known}/sync`, {});
      assert.equal(syncing.status, 503);
      assert.equal(syncing.body.error.code, 'psp_unavailable');
    } finally {
      await server.close();
      await db.$disconnect();
    }
  });

  test('a token the provider does not know is 400 on paymentMethod.token, with nothing recorded', async () => {
    const orderId = uniqueId('order');
    const unknown = await authorizeWith(orderId, { token: 'pm_unknown0000000000', brand: 'visa', last4: '4242' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'paymentMethod.token');
    assert.equal(await s.db.payment.count({ where: { orderId } }), 0);
    assert.equal((await atPsp(orderId)).payments.length, 0);
  });

  test('a malformed payment method is refused with 400 naming the field, before the provider is asked', async () => {
    const { token, brand, last4 } = await s.paymentMethod(CARDS.approve);
    const refusals: [unknown, string][] = [
      [{ token: 'tok_123456789', brand, last4 }, 'paymentMethod.token'],
      [{ token: 'pm_short', brand, last4 }, 'paymentMethod.token'],
      [{ brand, last4 }, 'paymentMethod.token'],
      [{ token, brand: 'diners', last4 }, 'paymentMethod.brand'],
      [{ token, brand, last4: '42' }, 'paymentMethod.last4'],
      // the card number is no longer taken: only a token
      [{ type: 'card', number: CARDS.approve }, 'paymentMethod.token'],
    ];
    for (const [paymentMethod, field] of refusals) {
      const orderId = uniqueId('order');
      const answer = await authorizeWith(orderId, paymentMethod);
      assert.equal(answer.status, 400, JSON.stringify(paymentMethod));
      assert.equal(answer.body.error.field, field, JSON.stringify(answer.body));
      assert.ok(!answer.text.includes(CARDS.approve), 'a refusal never repeats a card number');
      assert.equal((await atPsp(orderId)).payments.length, 0);
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
