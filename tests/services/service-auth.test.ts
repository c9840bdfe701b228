// The services' trust boundary: only callers with a service key get past /healthz and /metrics,
// the simulator takes only its own secret API keys, the debug switches exist only when fault
// injection is enabled, and no answer carries the webhook signing secret.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDb } from '../../lib/db.ts';
import { listen } from '../../services/common/server.ts';
import { createPaymentsApp } from '../../services/payments/app.ts';
import { TEST_PSP_API_KEYS, TEST_SERVICE_KEYS } from '../support/service-keys.ts';
import { CARDS, startServiceStack, uniqueId, until, type Answer, type Service, type ServiceStack } from './harness.ts';

const SIGNING_SECRET = 'whsec_must_never_be_shown_4f1c';
const SERVICES: Exclude<Service, 'psp'>[] = ['orders', 'inventory', 'coupons', 'loyalty', 'payments'];
/** One ordinary read per service (its answer does not matter, only that it got past the door). */
const READ: Record<Exclude<Service, 'psp'>, string> = {
  orders: '/orders/nobody',
  inventory: '/stock/MUG-LOGO',
  coupons: '/coupons/WELCOME10',
  loyalty: '/accounts/cust-alice',
  payments: '/payments/nobody',
};

function assertUnauthorized(answer: Answer, what: string): void {
  assert.equal(answer.status, 401, `${what}: ${answer.text}`);
  // the shared error shape, and nothing that says why
  assert.deepEqual(answer.body, { error: { code: 'unauthorized', message: 'authentication required' } }, what);
  assert.equal(answer.headers.get('www-authenticate'), 'Bearer');
}

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspWebhookSecret: SIGNING_SECRET });
});
after(() => s.stop());

describe('service credentials', () => {
  test('a call without a key, with a wrong key or with another scheme is 401 unauthorized, on reads and writes', async () => {
    for (const service of SERVICES) {
      assertUnauthorized(await s.request(service, 'GET', READ[service], undefined, { authorization: null }), `${service} without a key`);
      assertUnauthorized(await s.request(service, 'GET', READ[service], undefined, { authorization: 'Bearer svc_wrong' }), `${service} wrong key`);
      assertUnauthorized(await s.request(service, 'GET', READ[service], undefined, { authorization: TEST_SERVICE_KEYS[0] }), `${service} no scheme`);
      assertUnauthorized(
        await s.request(service, 'GET', READ[service], undefined, { authorization: `Basic ${TEST_SERVICE_KEYS[0]}` }),
        `${service} Basic scheme`,
      );
      // the simulator's key is not a service key
      assertUnauthorized(
        await s.request(service, 'GET', READ[service], undefined, { authorization: `Bearer ${TEST_PSP_API_KEYS[0]}` }),
        `${service} with the PSP key`,
      );
    }
    // refused before any work: no order, no idempotency record
    const orderId = uniqueId('order');
    const key = uniqueId('key');
    const write = await s.request(
      'orders',
      'POST',
      '/orders',
      { orderId, checkoutId: `checkout-${orderId}`, customerId: 'cust-bob', currency: 'EUR', lines: [{ sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 }] },
      { authorization: null, 'idempotency-key': key },
    );
    assertUnauthorized(write, 'orders POST without a key');
    assert.equal(await s.db.order.count({ where: { id: orderId } }), 0);
    assert.equal(await s.db.idempotencyRecord.count({ where: { key } }), 0);
  });

  test('each key of a rotation is accepted', async () => {
    for (const key of TEST_SERVICE_KEYS) {
      for (const service of SERVICES) {
        const answer = await s.request(service, 'GET', READ[service], undefined, { authorization: `Bearer ${key}` });
        assert.notEqual(answer.status, 401, `${service} with ${key}: ${answer.text}`);
      }
    }
  });

  test('/healthz and /metrics stay open', async () => {
    for (const service of [...SERVICES, 'psp'] as const) {
      const health = await s.request(service, 'GET', '/healthz', undefined, { authorization: null });
      assert.equal(health.status, 200, service);
      assert.deepEqual(health.body, { ok: true, service });
      const metrics = await fetch(new URL('/metrics', s.urls[service]));
      assert.equal(metrics.status, 200, service);
      await metrics.text();
    }
  });

  test('the simulator refuses calls without its own API key; payments reaches it with the key', async () => {
    const reference = uniqueId('order');
    const paymentMethod = await s.paymentMethod(CARDS.approve);
    const vaulted = await s.db.pspPaymentMethod.count();
    const refused: [string, string, unknown?][] = [
      ['GET', `/v1/payments?reference=${reference}`],
      ['POST', '/v1/payments', { amountMinor: 100, currency: 'EUR', reference, paymentMethod: paymentMethod.token }],
      ['POST', '/v1/payment_methods', { type: 'card', card: { number: CARDS.approve } }],
      ['GET', `/v1/payment_methods/${paymentMethod.token}`],
      ['GET', '/v1/webhook-endpoint'],
      ['PUT', '/v1/webhook-endpoint', { url: 'http://attacker.example/hook' }],
      ['GET', '/v1/settlements?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z'],
    ];
    for (const [method, path, body] of refused) {
      const headers = { 'idempotency-key': uniqueId('key') };
      assertUnauthorized(await s.request('psp', method, path, body, { ...headers, authorization: null }), `${method} ${path} without a key`);
      // a service key is not the provider's key
      assertUnauthorized(
        await s.request('psp', method, path, body, { ...headers, authorization: `Bearer ${TEST_SERVICE_KEYS[0]}` }),
        `${method} ${path} with a service key`,
      );
    }
    assert.equal(await s.db.pspPayment.count({ where: { merchantReference: reference } }), 0);
    assert.equal(await s.db.pspPaymentMethod.count(), vaulted);

    const authorized = await s.post('payments', '/payments/authorize', {
      orderId: reference,
      amountMinor: 1299,
      currency: 'EUR',
      paymentMethod,
    });
    assert.equal(authorized.status, 202, authorized.text);
    const atPsp = await s.get('psp', `/v1/payments?reference=${reference}`);
    assert.equal(atPsp.status, 200);
    assert.equal(atPsp.body.length, 1);
    await until(async () => (await s.post('payments', `/payments/${reference}/sync`, {}, null)).body.status === 'AUTHORIZED');
  });

  test('payments holding a key the simulator refuses answers 503 psp_unavailable, never 401', async () => {
    const paymentMethod = await s.paymentMethod(CARDS.approve);
    const db = createDb(s.databaseUrl);
    const app = createPaymentsApp(db, { acceptedKeys: TEST_SERVICE_KEYS, pspUrl: s.urls.psp, pspApiKey: 'sk_revoked' });
    const server = await listen(app, 0, '127.0.0.1');
    try {
      const response = await fetch(`${server.url}/payments/authorize`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_SERVICE_KEYS[0]}`, 'content-type': 'application/json', 'idempotency-key': uniqueId('key') },
        body: JSON.stringify({ orderId: uniqueId('order'), amountMinor: 100, currency: 'EUR', paymentMethod }),
      });
      assert.equal(response.status, 503);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'psp_unavailable');
    } finally {
      await server.close();
      await db.$disconnect();
    }
  });
});

describe('debug switches', () => {
  test('with fault injection on (the test stacks and bin/stack), /_faults and /v1/chaos are served', async () => {
    for (const service of [...SERVICES, 'psp'] as const) {
      assert.equal((await s.get(service, '/_faults')).status, 200, service);
      // still behind the key
      assertUnauthorized(await s.request(service, 'PUT', '/_faults', { errorRate: 1 }, { authorization: null }), `${service} PUT /_faults`);
    }
    assert.equal((await s.get('psp', '/v1/chaos')).status, 200);
    assertUnauthorized(await s.request('psp', 'PUT', '/v1/chaos', { dropRate: 1 }, { authorization: null }), 'PUT /v1/chaos without a key');
  });

  test('no chaos answer carries the webhook signing secret, not even one just set', async () => {
    const newSecret = 'whsec_set_through_chaos_9a7e';
    const answers = [
      await s.get('psp', '/v1/chaos'),
      await s.request('psp', 'PUT', '/v1/chaos', { duplicateRate: 0.5, secret: newSecret }),
      await s.get('psp', '/v1/chaos'),
      await s.request('psp', 'DELETE', '/v1/chaos'),
      await s.get('psp', '/v1/chaos'),
    ];
    for (const answer of answers) {
      assert.equal(answer.status, 200, answer.text);
      assert.ok(!answer.text.includes(SIGNING_SECRET), answer.text);
      assert.ok(!answer.text.includes(newSecret), answer.text);
      assert.ok(!('secret' in answer.body), answer.text);
    }
    assert.equal(answers[1]!.body.duplicateRate, 0.5);
  });

  describe('off unless enabled', () => {
    let plain: ServiceStack;
    before(async () => {
      // what a deployment gets without FAULT_INJECTION=on
      delete process.env.FAULT_INJECTION;
      plain = await startServiceStack({ faultInjection: undefined });
    });
    after(() => plain?.stop());

    test('/_faults and /v1/chaos are absent: 404 like any unknown route, even with a valid key', async () => {
      for (const service of [...SERVICES, 'psp'] as const) {
        for (const method of ['GET', 'PUT', 'DELETE']) {
          const answer = await plain.request(service, method, '/_faults', method === 'PUT' ? { errorRate: 1 } : undefined);
          assert.equal(answer.status, 404, `${method} ${service} /_faults: ${answer.text}`);
          assert.equal(answer.body.error.code, 'not_found');
        }
      }
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const answer = await plain.request('psp', method, '/v1/chaos', method === 'PUT' ? { dropRate: 1 } : undefined);
        assert.equal(answer.status, 404, `${method} /v1/chaos: ${answer.text}`);
      }
      // and the service works as usual
      assert.equal((await plain.get('inventory', '/stock/MUG-LOGO')).status, 200);
    });
  });
});
