// The provider's webhooks: signed, at least once, retried with backoff across a
// restart, and misbehaving on demand (duplicates, drops, reordering). Each test
// runs its own PSP instances on one database, so it controls every running loop.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { listen } from '../../services/common/server.ts';
import { createPspApp, type PspAppOptions } from '../../services/psp/app.ts';
import { setWebhookEndpoint } from '../../services/psp/webhooks.ts';
import { tokeniseCard } from '../support/cards.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { authFor, TEST_PSP_API_KEYS } from '../support/service-keys.ts';
import { CARDS, uniqueId, until } from './harness.ts';

const SECRET = 'whsec_test_secret';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase('cf_psp');
});
after(() => t.drop());

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  at: number;
}

/** A merchant's webhook endpoint: records every delivery; `answer` picks the status for the nth one. */
async function startReceiver(answer: (n: number) => number = () => 200) {
  const received: Received[] = [];
  let calls = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: req.headers, raw, body: JSON.parse(raw), at: Date.now() });
      res.statusCode = answer(++calls);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/psp`;
  return {
    url,
    received,
    events: (type?: string) => received.filter((r) => type === undefined || r.body.type === type),
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** One PSP instance (HTTP + background loop) on the test database. */
async function startPsp(options: PspAppOptions = {}) {
  const psp = createPspApp(t.db, {
    acceptedKeys: TEST_PSP_API_KEYS,
    faultInjection: true,
    pollIntervalMs: 20,
    ...options,
    chaos: { processingDelayMs: 50, secret: SECRET, ...options.chaos },
  });
  const server = await listen(psp.app, 0, '127.0.0.1');
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(new URL(path, server.url), {
      method,
      headers: { ...authFor('psp'), 'content-type': 'application/json', ...(method === 'POST' ? { 'idempotency-key': uniqueId('key') } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    call,
    authorize: async (reference: string, card: string = CARDS.approve, amountMinor = 1000) =>
      call('POST', '/v1/payments', { amountMinor, currency: 'EUR', reference, paymentMethod: (await tokeniseCard(server.url, card)).token }),
    status: async (id: string) => (await call('GET', `/v1/payments/${id}`)).body.status as string,
    async close() {
      await psp.close();
      await server.close();
    },
  };
}

/** Verifies a Psp-Signature header the way a merchant would, from the README alone. */
function signatureIsValid(header: string | string[] | undefined, raw: string, secret: string): boolean {
  if (typeof header !== 'string') return false;
  const parts = header.split(',').map((p) => p.split('=') as [string, string]);
  const timestamp = parts.find(([k]) => k === 't')?.[1];
  const expected = createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex');
  return parts.some(([k, v]) => k === 'v1' && v === expected);
}

const deliveriesOf = (paymentId: string) =>
  t.db.pspDelivery.findMany({ where: { event: { paymentId } }, include: { event: true }, orderBy: { createdAt: 'asc' } });

describe('psp webhooks', () => {
  test('an approved payment is announced by a payment.authorized webhook signed over the raw body', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp();
    try {
      const reference = uniqueId('order');
      const created = await psp.authorize(reference);
      assert.equal(created.status, 202);
      assert.equal(created.body.status, 'PENDING');
      await until(async () => receiver.events('payment.authorized').some((e) => e.body.data.paymentId === created.body.id));

      const [event] = receiver.received.filter((e) => e.body.data.paymentId === created.body.id);
      assert.match(event!.body.id, /^evt_/);
      assert.deepEqual(event!.body.data, { paymentId: created.body.id, reference, status: 'AUTHORIZED', amountMinor: 1000, currency: 'EUR' });
      assert.match(String(event!.headers['psp-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
      assert.ok(signatureIsValid(event!.headers['psp-signature'], event!.raw, SECRET));
      assert.ok(!signatureIsValid(event!.headers['psp-signature'], event!.raw, 'whsec_wrong'));
      assert.ok(!signatureIsValid(event!.headers['psp-signature'], event!.raw.replace('1000', '1001'), SECRET));

      // the stored event is byte for byte what was delivered, and the delivery is recorded (just after the answer)
      await until(async () => (await deliveriesOf(created.body.id))[0]?.status === 'DELIVERED');
      const [delivery] = await deliveriesOf(created.body.id);
      assert.equal(delivery!.event.body, event!.raw);
      assert.equal(delivery!.status, 'DELIVERED');
      assert.equal(delivery!.attempts, 1);
      assert.equal(await psp.status(created.body.id), 'AUTHORIZED');
      assert.deepEqual((await t.db.pspTransaction.findMany({ where: { paymentId: created.body.id } })).map((x) => x.type), ['AUTHORIZATION']);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('a declined card is announced by payment.declined with no money movement', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp();
    try {
      const created = await psp.authorize(uniqueId('order'), CARDS.insufficientFunds);
      await until(async () => receiver.events('payment.declined').some((e) => e.body.data.paymentId === created.body.id));
      const payment = (await psp.call('GET', `/v1/payments/${created.body.id}`)).body;
      assert.equal(payment.status, 'DECLINED');
      assert.equal(payment.declineCode, 'insufficient_funds');
      assert.equal(await t.db.pspTransaction.count({ where: { paymentId: created.body.id } }), 0);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('a capture is announced once by payment.captured and moves money exactly once', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp();
    try {
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => (await psp.status(created.id)) === 'AUTHORIZED');
      const captures = await Promise.all([1, 2, 3].map(() => psp.call('POST', `/v1/payments/${created.id}/capture`, { amountMinor: 1000 })));
      assert.deepEqual(captures.map((c) => c.status).sort(), [200, 200, 202]); // one taken on, the others told its state
      assert.equal(captures.find((c) => c.status === 202)!.body.status, 'CAPTURE_PENDING');
      await until(async () => receiver.events('payment.captured').some((e) => e.body.data.paymentId === created.id));
      await new Promise((resolve) => setTimeout(resolve, 200)); // nothing more arrives
      const mine = receiver.received.filter((e) => e.body.data.paymentId === created.id).map((e) => e.body.type);
      assert.deepEqual(mine, ['payment.authorized', 'payment.captured']);
      const transactions = await t.db.pspTransaction.findMany({ where: { paymentId: created.id }, orderBy: { createdAt: 'asc' } });
      assert.deepEqual(transactions.map((x) => [x.type, x.amountMinor]), [['AUTHORIZATION', 1000], ['CAPTURE', 1000]]);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('refund outcomes are announced by signed refund.succeeded / refund.failed webhooks whose reference is our refund id', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp();
    try {
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => (await psp.status(created.id)) === 'AUTHORIZED');
      await psp.call('POST', `/v1/payments/${created.id}/capture`, { amountMinor: 1000 });
      await until(async () => (await psp.status(created.id)) === 'CAPTURED');

      const ok = await psp.call('POST', `/v1/payments/${created.id}/refunds`, { amountMinor: 400, reference: 'refund-req-ok' });
      assert.equal(ok.status, 202);
      await until(async () => receiver.events('refund.succeeded').some((e) => e.body.data.refundId === ok.body.refundId));
      const [succeeded] = receiver.events('refund.succeeded').filter((e) => e.body.data.refundId === ok.body.refundId);
      assert.deepEqual(succeeded!.body.data, {
        refundId: ok.body.refundId,
        paymentId: created.id,
        reference: 'refund-req-ok',
        status: 'SUCCEEDED',
        amountMinor: 400,
        currency: 'EUR',
        failureReason: null,
      });
      assert.ok(signatureIsValid(succeeded!.headers['psp-signature'], succeeded!.raw, SECRET));

      await psp.call('PUT', '/v1/chaos', { rejectRefunds: true, processingDelayMs: 50, secret: SECRET });
      const rejected = await psp.call('POST', `/v1/payments/${created.id}/refunds`, { amountMinor: 600, reference: 'refund-req-no' });
      await psp.call('DELETE', '/v1/chaos');
      await until(async () => receiver.events('refund.failed').some((e) => e.body.data.refundId === rejected.body.refundId));
      const [failed] = receiver.events('refund.failed').filter((e) => e.body.data.refundId === rejected.body.refundId);
      assert.equal(failed!.body.data.reference, 'refund-req-no');
      assert.equal(failed!.body.data.status, 'FAILED');
      assert.equal(failed!.body.data.failureReason, 'refund_rejected');
      assert.ok(signatureIsValid(failed!.headers['psp-signature'], failed!.raw, SECRET));

      const transactions = await t.db.pspTransaction.findMany({ where: { paymentId: created.id }, orderBy: { createdAt: 'asc' } });
      assert.deepEqual(transactions.map((x) => [x.type, x.amountMinor]), [['AUTHORIZATION', 1000], ['CAPTURE', 1000], ['REFUND', 400]]);
      const payment = await t.db.pspPayment.findUniqueOrThrow({ where: { id: created.id } });
      assert.deepEqual([payment.status, payment.refundedMinor, payment.refundPendingMinor], ['CAPTURED', 400, 0]);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('a failing endpoint is retried with growing backoff until it answers 2xx', async () => {
    const receiver = await startReceiver((n) => (n <= 2 ? 500 : 204));
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp({ delivery: { retryBaseMs: 150, retryMaxMs: 10_000 } });
    try {
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => (await deliveriesOf(created.id))[0]?.status === 'DELIVERED');
      const [delivery] = await deliveriesOf(created.id);
      assert.equal(delivery!.attempts, 3);
      assert.equal(delivery!.lastError, null);
      assert.equal(receiver.received.length, 3);
      assert.ok(receiver.received.every((r) => r.body.id === delivery!.eventId));
      const [a, b, c] = receiver.received.map((r) => r.at) as [number, number, number];
      assert.ok(b - a >= 150, `first retry after ${b - a} ms`);
      assert.ok(c - b >= 300, `second retry after ${c - b} ms`);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('pending retries survive a restart of the provider', async () => {
    let failing = true;
    const receiver = await startReceiver(() => (failing ? 503 : 200));
    await setWebhookEndpoint(t.db, receiver.url);
    const first = await startPsp({ delivery: { retryBaseMs: 300 } });
    const { body: created } = await first.authorize(uniqueId('order'));
    await until(async () => (await deliveriesOf(created.id))[0]?.lastError === 'endpoint answered 503');
    await first.close();

    const [stalled] = await deliveriesOf(created.id);
    assert.equal(stalled!.status, 'PENDING');
    assert.equal(stalled!.lastError, 'endpoint answered 503');
    failing = false;
    const second = await startPsp({ delivery: { retryBaseMs: 300 } });
    try {
      await until(async () => (await deliveriesOf(created.id))[0]?.status === 'DELIVERED');
      assert.ok(receiver.received.length >= 2);
      assert.ok(receiver.received.every((r) => r.body.id === stalled!.eventId));
    } finally {
      await second.close();
      await receiver.close();
    }
  });

  test('duplicateRate=1 delivers every event twice with the same event id', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp({ chaos: { duplicateRate: 1 } });
    try {
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => receiver.received.filter((e) => e.body.data.paymentId === created.id).length === 2);
      const [one, two] = receiver.received.filter((e) => e.body.data.paymentId === created.id);
      assert.equal(one!.body.id, two!.body.id);
      assert.equal(one!.raw, two!.raw);
      assert.ok(signatureIsValid(two!.headers['psp-signature'], two!.raw, SECRET));
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('dropRate=1 never delivers, but the provider still has the payment', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const psp = await startPsp();
    try {
      const chaos = await psp.call('PUT', '/v1/chaos', { dropRate: 1, processingDelayMs: 50 });
      assert.equal(chaos.body.dropRate, 1);
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => (await deliveriesOf(created.id))[0]?.status === 'DROPPED');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(receiver.received.filter((e) => e.body.data.paymentId === created.id).length, 0);
      const truth = await psp.call('GET', `/v1/payments/${created.id}`);
      assert.equal(truth.status, 200);
      assert.equal(truth.body.status, 'AUTHORIZED');
    } finally {
      await psp.call('DELETE', '/v1/chaos');
      await psp.close();
      await receiver.close();
    }
  });

  test('with reorder, waiting events are delivered newest first', async () => {
    await t.db.pspWebhookEndpoint.deleteMany(); // no endpoint yet: events wait
    const psp = await startPsp({ chaos: { reorder: true } });
    const receiver = await startReceiver();
    try {
      const { body: created } = await psp.authorize(uniqueId('order'));
      await until(async () => (await psp.status(created.id)) === 'AUTHORIZED');
      await psp.call('POST', `/v1/payments/${created.id}/capture`, { amountMinor: 1000 });
      await until(async () => (await psp.status(created.id)) === 'CAPTURED');
      assert.equal((await deliveriesOf(created.id)).every((d) => d.status === 'PENDING' && d.attempts === 0), true);

      await psp.call('PUT', '/v1/webhook-endpoint', { url: receiver.url });
      await until(async () => receiver.received.filter((e) => e.body.data.paymentId === created.id).length === 2);
      const types = receiver.received.filter((e) => e.body.data.paymentId === created.id).map((e) => e.body.type);
      assert.deepEqual(types, ['payment.captured', 'payment.authorized']);
    } finally {
      await psp.close();
      await receiver.close();
    }
  });

  test('two provider instances on one database deliver each event once', async () => {
    const receiver = await startReceiver();
    await setWebhookEndpoint(t.db, receiver.url);
    const [a, b] = [await startPsp({ pollIntervalMs: 5 }), await startPsp({ pollIntervalMs: 5 })];
    try {
      const created = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).authorize(uniqueId('order'))));
      const ids = new Set(created.map((c) => c.body.id as string));
      const mine = () => receiver.received.filter((e) => ids.has(e.body.data.paymentId));
      await until(async () => mine().length >= 12);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(mine().length, 12);
      assert.equal(new Set(mine().map((e) => e.body.id)).size, 12);
      assert.equal(await t.db.pspTransaction.count({ where: { paymentId: { in: [...ids] }, type: 'AUTHORIZATION' } }), 12);
    } finally {
      await a.close();
      await b.close();
      await receiver.close();
    }
  });
});
