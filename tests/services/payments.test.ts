import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createDb } from '../../lib/db.ts';
import { createPaymentsApp } from '../../services/payments/app.ts';
import { listen } from '../../services/common/server.ts';
import { CARDS, startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspTimeoutCardMs: 300, pspRequestTimeoutMs: 2_000 });
});
after(() => s.stop());

const authorize = (orderId: string, card: string = CARDS.approve, amountMinor = 5297, key?: string) =>
  s.post('payments', '/payments/authorize', { orderId, amountMinor, currency: 'EUR', paymentMethod: { type: 'card', number: card } }, key);

/** What the provider recorded for an order: its payments and their money movements. */
async function atPsp(orderId: string) {
  const payments = await s.db.pspPayment.findMany({ where: { merchantReference: orderId }, include: { transactions: true } });
  const transactions = payments.flatMap((p) => p.transactions.map((t) => t.type));
  return { payments, transactions, captures: transactions.filter((t) => t === 'CAPTURE').length };
}

describe('payments', () => {
  test('an approved card is authorized once at the provider', async () => {
    const orderId = uniqueId('order');
    const answer = await authorize(orderId);
    assert.equal(answer.status, 201);
    assert.equal(answer.body.paymentId, `pay_${orderId}`);
    assert.equal(answer.body.status, 'AUTHORIZED');
    assert.equal(answer.body.amountMinor, 5297);

    const again = await authorize(orderId); // another key: answered from our record
    assert.equal(again.status, 200);
    assert.equal(again.body.pspPaymentId, answer.body.pspPaymentId);
    assert.deepEqual((await atPsp(orderId)).transactions, ['AUTHORIZATION']);
  });

  test('a declined card is 402, recorded as DECLINED, and a repeat gives the same 402', async () => {
    const orderId = uniqueId('order');
    const answer = await authorize(orderId, CARDS.decline);
    assert.equal(answer.status, 402);
    assert.equal(answer.body.error.code, 'payment_declined');
    assert.equal(answer.body.error.declineCode, 'card_declined');
    const row = await s.db.payment.findUniqueOrThrow({ where: { orderId } });
    assert.equal(row.status, 'DECLINED');

    const repeat = await authorize(orderId, CARDS.decline);
    assert.equal(repeat.status, 402);
    assert.deepEqual(repeat.body, answer.body);
    const replay = await authorize(orderId, CARDS.decline, 5297, `k-${orderId}`);
    const replayed = await authorize(orderId, CARDS.decline, 5297, `k-${orderId}`);
    assert.equal(replayed.status, 402);
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    assert.equal(replayed.text, replay.text);
    assert.equal((await atPsp(orderId)).payments.length, 1);

    const funds = await authorize(uniqueId('order'), CARDS.insufficientFunds);
    assert.equal(funds.body.error.declineCode, 'insufficient_funds');
  });

  test('capture called twice with different keys captures exactly once at the provider', async () => {
    const orderId = uniqueId('order');
    await authorize(orderId);
    const first = await s.post('payments', `/payments/${orderId}/capture`, {}, `capture-a-${orderId}`);
    const second = await s.post('payments', `/payments/${orderId}/capture`, {}, `capture-b-${orderId}`);
    for (const answer of [first, second]) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body.status, 'CAPTURED');
      assert.equal(answer.body.capturedMinor, 5297);
    }
    assert.equal((await atPsp(orderId)).captures, 1);
  });

  test('concurrent captures with different keys still capture once', async () => {
    const orderId = uniqueId('order');
    await authorize(orderId);
    const answers = await Promise.all(Array.from({ length: 6 }, () => s.post('payments', `/payments/${orderId}/capture`)));
    assert.ok(answers.some((a) => a.status === 200));
    for (const a of answers) assert.ok([200, 503].includes(a.status), a.text); // 503 = the provider is still busy with the same capture
    assert.equal((await atPsp(orderId)).captures, 1);
    assert.equal((await s.get('payments', `/payments/${orderId}`)).body.status, 'CAPTURED');
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
    // the provider authorizes, then holds its answer: our void arrives in that window
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
    const psp = await atPsp(orderId);
    assert.deepEqual(psp.transactions.sort(), ['AUTHORIZATION', 'VOID']);
    assert.equal(psp.payments[0]!.status, 'VOIDED');
  });

  test('void after authorize voids at the provider; capture is then refused', async () => {
    const orderId = uniqueId('order');
    await authorize(orderId);
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

  test('void after capture is refused; void of a declined payment changes nothing', async () => {
    const captured = uniqueId('order');
    await authorize(captured);
    await s.post('payments', `/payments/${captured}/capture`);
    const voidCaptured = await s.post('payments', `/payments/${captured}/void`);
    assert.equal(voidCaptured.status, 409);
    assert.equal(voidCaptured.body.error.code, 'already_captured');

    const declined = uniqueId('order');
    await authorize(declined, CARDS.decline);
    const voidDeclined = await s.post('payments', `/payments/${declined}/void`);
    assert.equal(voidDeclined.status, 200);
    assert.equal(voidDeclined.body.status, 'DECLINED');
    assert.equal((await s.post('payments', `/payments/${uniqueId('none')}/capture`)).status, 404);
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
    assert.equal(retried.status, 201);
    assert.equal(retried.headers.get('idempotent-replayed'), null);
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
    const app = createPaymentsApp(db, { pspUrl: `http://127.0.0.1:${port}`, pspTimeoutMs: 1_000 });
    const server = await listen(app, 0, '127.0.0.1');
    try {
      const response = await fetch(`${server.url}/payments/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'unreachable-1' },
        body: JSON.stringify({ orderId: 'o-unreachable', amountMinor: 100, currency: 'EUR', paymentMethod: { type: 'card', number: CARDS.approve } }),
      });
      assert.equal(response.status, 503);
      const body = (await response.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'psp_unavailable');
    } finally {
      await server.close();
      await db.$disconnect();
    }
  });

  test('an unknown card number is 400 naming the field', async () => {
    const unknown = await authorize(uniqueId('order'), '4111111111111111');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'paymentMethod.number');
    const malformed = await authorize(uniqueId('order'), 'abc');
    assert.equal(malformed.body.error.field, 'paymentMethod.number');
  });
});

describe('psp simulator', () => {
  test('a payment is captured at most once and lists by reference', async () => {
    const reference = uniqueId('ref');
    const created = await s.post('psp', '/v1/payments', { amountMinor: 1000, currency: 'EUR', reference, card: { number: CARDS.approve } });
    assert.equal(created.status, 201);
    assert.equal(created.body.status, 'AUTHORIZED');
    const id = created.body.id;

    const tooMuch = await s.post('psp', `/v1/payments/${id}/capture`, { amountMinor: 1001 });
    assert.equal(tooMuch.status, 400);
    const captured = await s.post('psp', `/v1/payments/${id}/capture`, { amountMinor: 1000 });
    assert.equal(captured.status, 200);
    assert.equal(captured.body.status, 'CAPTURED');
    const twice = await s.post('psp', `/v1/payments/${id}/capture`, { amountMinor: 1000 });
    assert.equal(twice.status, 409);
    assert.equal(twice.body.error.code, 'already_captured');
    assert.equal((await s.post('psp', `/v1/payments/${id}/void`)).body.error.code, 'already_captured');

    const listed = await s.get('psp', `/v1/payments?reference=${reference}`);
    assert.equal(listed.body.length, 1);
    assert.deepEqual(
      listed.body[0].transactions.map((t: { type: string }) => t.type),
      ['AUTHORIZATION', 'CAPTURE'],
    );
    assert.equal((await s.get('psp', `/v1/payments/${id}`)).body.capturedMinor, 1000);
  });

  test('a declined card is a 201 DECLINED with no money movement', async () => {
    const created = await s.post('psp', '/v1/payments', { amountMinor: 1000, currency: 'EUR', reference: 'r', card: { number: CARDS.decline } });
    assert.equal(created.status, 201);
    assert.equal(created.body.status, 'DECLINED');
    assert.equal(created.body.declineCode, 'card_declined');
    assert.equal(await s.db.pspTransaction.count({ where: { paymentId: created.body.id } }), 0);
  });

  test('the timeout card holds the request, then 504 processing_timeout', async () => {
    const started = Date.now();
    const answer = await s.post('psp', '/v1/payments', { amountMinor: 1000, currency: 'EUR', reference: 'slow', card: { number: CARDS.timeout } });
    assert.equal(answer.status, 504);
    assert.equal(answer.body.error.code, 'processing_timeout');
    assert.ok(Date.now() - started >= 250);
    assert.equal(await s.db.pspPayment.count({ where: { merchantReference: 'slow' } }), 0);
  });

  test('an unknown test card is 400 on card.number', async () => {
    const answer = await s.post('psp', '/v1/payments', { amountMinor: 1, currency: 'EUR', reference: 'r', card: { number: '4111111111111111' } });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'card.number');
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
