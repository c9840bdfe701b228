// The one HTTP client: what each kind of service answer becomes for the workflow.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { callService, callServiceUnlessMissing, ServiceUnavailableError, withServiceCredentials } from '../../activities/http.ts';
import { BusinessFailure } from '../../shared/errors.ts';

type Answer = [status: number, body: unknown, headers?: Record<string, string>];
const answers: Record<string, Answer> = {
  '/created': [201, { id: 'order-1', subtotalMinor: 4500 }],
  '/out-of-stock': [409, { error: { code: 'out_of_stock', message: 'Not enough SKU-1', sku: 'SKU-1', available: 1 } }],
  '/declined': [402, { error: { code: 'payment_declined', message: 'Card declined', declineCode: 'card_declined' } }],
  '/released': [409, { error: { code: 'reservation_released', message: 'Reservation was released' } }],
  '/reused-key': [422, { error: { code: 'idempotency_key_reused', message: 'Different body' } }],
  '/already-captured': [409, { error: { code: 'already_captured', message: 'Payment already captured' } }],
  '/not-found': [404, { error: { code: 'not_found', message: 'No such order' } }],
  '/wrong-route': [404, '<html>Cannot POST /wrong-route</html>'],
  '/busy': [429, { error: { code: 'request_in_progress', message: 'Still working' } }, { 'retry-after': '2' }],
  '/down': [503, { error: { code: 'database_unavailable', message: 'Database unreachable' } }],
  '/unauthorized': [401, { error: { code: 'unauthorized', message: 'authentication required' } }],
};
let seen: http.IncomingMessage | undefined;
let seenBody = '';
let baseUrl = '';
const server = http.createServer(async (req, res) => {
  seen = req;
  seenBody = '';
  for await (const chunk of req) seenBody += chunk;
  if (req.url === '/slow') return void setTimeout(() => res.end('{}'), 1_000);
  const [status, body, headers] = answers[req.url ?? ''] ?? [500, {}];
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const call = (path: string) => callService({ service: 'orders', baseUrl, path, body: { a: 1 }, idempotencyKey: 'checkout-1:create-order' });

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error, 'expected the call to fail');
  return err;
}

describe('service HTTP client', () => {
  test('a 2xx returns the body; the idempotency key and JSON body are sent', async () => {
    assert.deepEqual(await call('/created'), { id: 'order-1', subtotalMinor: 4500 });
    assert.equal(seen?.headers['idempotency-key'], 'checkout-1:create-order');
    assert.equal(seen?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seenBody), { a: 1 });
  });

  for (const [path, type] of [
    ['/out-of-stock', BusinessFailure.OutOfStock],
    ['/declined', BusinessFailure.PaymentDeclined],
    ['/released', BusinessFailure.AlreadyCompensated],
    ['/reused-key', BusinessFailure.InvalidRequest],
    ['/already-captured', BusinessFailure.IllegalTransition],
    ['/not-found', BusinessFailure.InvalidRequest],
  ] as const) {
    test(`${path} is a non-retryable ${type}`, async () => {
      const err = await failureOf(call(path));
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, type);
      assert.equal(err.nonRetryable, true);
      assert.equal((err.details?.[0] as { service: string }).service, 'orders');
    });
  }

  test('service details travel with the failure', async () => {
    const err = (await failureOf(call('/declined'))) as ApplicationFailure;
    assert.equal(err.message, 'Card declined');
    assert.equal((err.details?.[0] as { declineCode: string }).declineCode, 'card_declined');
  });

  test('429 with Retry-After is retryable and comes back when the service says', async () => {
    const err = await failureOf(call('/busy'));
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.nonRetryable, false);
    assert.equal(err.nextRetryDelay, 2000);
  });

  test('5xx, timeouts and refused connections are retryable errors naming the service', async () => {
    const down = await failureOf(call('/down'));
    assert.ok(down instanceof ServiceUnavailableError);
    assert.match(down.message, /^orders service answered 503 database_unavailable/);
    const slow = await failureOf(callService({ service: 'orders', baseUrl, path: '/slow', body: {}, idempotencyKey: 'k', timeoutMs: 100 }));
    assert.ok(slow instanceof ServiceUnavailableError);
    assert.match(slow.message, /orders service timed out/);
    const refused = await failureOf(callService({ service: 'orders', baseUrl: 'http://127.0.0.1:9', path: '/x', body: {}, idempotencyKey: 'k' }));
    assert.ok(refused instanceof ServiceUnavailableError);
    assert.match(refused.message, /orders service unreachable/);
  });

  test('credentials bound by the worker are sent: the service key to services, the API key to the provider', async () => {
    const bound = withServiceCredentials({ serviceKey: 'svc_k', pspApiKey: 'sk_k' }, {
      orders: () => callService({ service: 'orders', baseUrl, path: '/created', method: 'GET' }),
      psp: () => callService({ service: 'psp', baseUrl, path: '/created', method: 'GET' }),
    });
    await bound.orders();
    assert.equal(seen?.headers.authorization, 'Bearer svc_k');
    await bound.psp();
    assert.equal(seen?.headers.authorization, 'Bearer sk_k');
    // outside the bound activities nothing is sent
    await call('/created');
    assert.equal(seen?.headers.authorization, undefined);
  });

  test('a refused key (401) is a retryable error naming the service: fixing the key lets the step go on', async () => {
    const err = await failureOf(call('/unauthorized'));
    assert.ok(err instanceof ServiceUnavailableError);
    assert.match(err.message, /^orders service answered 401 unauthorized/);
  });

  test('opting in, the service\'s own 404 means "nothing there", but a wrong route does not', async () => {
    const request = { service: 'orders', baseUrl, body: {}, idempotencyKey: 'k' };
    assert.equal(await callServiceUnlessMissing({ ...request, path: '/not-found' }), undefined);
    const wrongRoute = await failureOf(callServiceUnlessMissing({ ...request, path: '/wrong-route' }));
    assert.ok(wrongRoute instanceof ApplicationFailure);
    assert.match(wrongRoute.message, /answered 404/);
  });
});
