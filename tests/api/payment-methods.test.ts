// POST /checkouts pays with the provider's token, never the card number: against the real
// payment-provider simulator (its vault, its test cards) and a real Temporal dev server, with no
// worker. A card is exchanged for a token before the run starts; a token is looked up; whatever
// the provider refuses, or cannot answer, starts nothing. Then the API's client of the vault on its
// own, against a provider that fails.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeArrayFromPayloads, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { createPaymentMethodClient } from '../../api/payment-methods.ts';
import { HttpError } from '../../lib/http-errors.ts';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { checkoutWorkflowId, type CheckoutInput } from '../../shared/checkout.ts';
import { PAYMENT_METHOD_TOKEN } from '../../shared/payments.ts';
import { startServiceStack, type ServiceStack } from '../services/harness.ts';
import { CARDS, tokeniseCard } from '../support/cards.ts';
import { historyText, testDataConverter } from '../support/payload-keys.ts';
import { TEST_CREDENTIALS } from '../support/service-keys.ts';
import { checkoutBody, freshKey, startApiHarness, type ApiHarness } from './harness.ts';

/** Not one of the simulator's test cards: the provider refuses it. */
const FOREIGN_CARD = '4111111111111111';
const CUSTOMER = { role: 'customer' as const, subject: 'cust-ada' };

let temporal: DevServer;
let services: ServiceStack;
let api: ApiHarness;

before(async () => {
  [temporal, services] = await Promise.all([startDevServer(), startServiceStack()]);
  api = await startApiHarness({
    temporalAddress: temporal.address,
    db: services.db,
    paymentMethods: createPaymentMethodClient(services.urls.psp, { apiKey: TEST_CREDENTIALS.pspApiKey }),
  });
});

after(async () => {
  await api?.close();
  await services?.stop();
  await temporal?.stop();
});

function postCheckout(key: string, paymentMethod: unknown, harness: ApiHarness = api) {
  return harness.request('POST', '/checkouts', { body: checkoutBody({ paymentMethod }), headers: { 'Idempotency-Key': key }, as: CUSTOMER });
}

/** The input the run started with, decoded as a worker would. */
async function startedInput(key: string): Promise<{ input: CheckoutInput; rawHistory: string }> {
  const history = await api.client.workflow.getHandle(checkoutWorkflowId(key)).fetchHistory();
  const payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  const [input] = (await decodeArrayFromPayloads(loadDataConverter(testDataConverter()), payloads)) as [CheckoutInput];
  return { input, rawHistory: historyText(history) };
}

/** Executions with this workflow id, as visibility sees them (waits for it to catch up). */
async function executionCount(key: string, atLeast = 1): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { count } = await api.client.workflow.count(`WorkflowId = '${checkoutWorkflowId(key)}'`);
    if (count >= atLeast || Date.now() > deadline) return count;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const vaultRows = (key: string) => services.db.pspPaymentMethod.count({ where: { idempotencyKey: `checkout:${key}` } });

describe('POST /checkouts with a card number', () => {
  test('the card is exchanged for the provider token: the run holds token, brand and last4, never the number', async () => {
    const key = freshKey('pm-card');
    const res = await postCheckout(key, { type: 'card', number: CARDS.approve });
    assert.equal(res.status, 202, JSON.stringify(res.body));

    const { input, rawHistory } = await startedInput(key);
    assert.deepEqual(Object.keys(input.paymentMethod).sort(), ['brand', 'last4', 'token']);
    assert.match(input.paymentMethod.token, PAYMENT_METHOD_TOKEN);
    assert.equal(input.paymentMethod.brand, 'visa');
    assert.equal(input.paymentMethod.last4, '4242');
    assert.ok(!JSON.stringify(input).includes(CARDS.approve), 'no number in the workflow input');
    assert.ok(!rawHistory.includes(CARDS.approve), 'no number anywhere in the history');
    const description = await api.client.workflow.getHandle(checkoutWorkflowId(key)).describe();
    assert.ok(!JSON.stringify(description.memo ?? {}).includes(CARDS.approve), 'no number in the memo');

    // the provider's vault holds it, under the checkout's key, behind the very token the run carries
    const stored = await services.db.pspPaymentMethod.findUniqueOrThrow({ where: { idempotencyKey: `checkout:${key}` } });
    assert.equal(stored.id, input.paymentMethod.token);
    assert.equal(stored.cardNumber, CARDS.approve);
  });

  test('repeating the POST tokenises once and joins the same run', async () => {
    const key = freshKey('pm-repeat');
    const first = await postCheckout(key, { type: 'card', number: CARDS.approve });
    const again = await postCheckout(key, { type: 'card', number: CARDS.approve });
    assert.equal(first.status, 202);
    assert.deepEqual(again.body, first.body);
    assert.equal(await vaultRows(key), 1);
    assert.equal(await executionCount(key), 1);
  });

  test('a card the provider does not take is 400 on paymentMethod.number, the number nowhere in the answer, nothing started', async () => {
    const key = freshKey('pm-foreign');
    const res = await postCheckout(key, { type: 'card', number: FOREIGN_CARD });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'paymentMethod.number');
    assert.ok(!JSON.stringify(res.body).includes(FOREIGN_CARD), JSON.stringify(res.body));
    assert.ok(!JSON.stringify(res.body).includes(FOREIGN_CARD.slice(-4)), 'not even its last four digits');
    assert.equal(await executionCount(key, 0), 0);
    assert.equal(await vaultRows(key), 0, 'the provider kept nothing');
  });

  test('the same key with another card is 422 idempotency_key_reused, and the first run stands', async () => {
    const key = freshKey('pm-reused');
    assert.equal((await postCheckout(key, { type: 'card', number: CARDS.approve })).status, 202);
    const res = await postCheckout(key, { type: 'card', number: CARDS.declined });
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'idempotency_key_reused');
    assert.equal(res.body.error.message, `Idempotency-Key "${key}" was already used for a different checkout request`);
    assert.ok(!JSON.stringify(res.body).includes(CARDS.declined));
    assert.equal(await executionCount(key), 1);
    const { input } = await startedInput(key);
    assert.equal(input.paymentMethod.last4, '4242', 'the first card is still the one paid with');
  });
});

describe('POST /checkouts with a token', () => {
  test('a token the client got from the provider is looked up and paid with as it is', async () => {
    const method = await tokeniseCard(services.urls.psp, CARDS.approveLate);
    const key = freshKey('pm-token');
    const res = await postCheckout(key, { type: 'token', token: method.token });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const { input } = await startedInput(key);
    assert.deepEqual(input.paymentMethod, method);
    assert.equal(await vaultRows(key), 0, 'nothing tokenised again');
  });

  test('a token the provider does not know is 400 on paymentMethod.token, and starts nothing', async () => {
    const key = freshKey('pm-unknown');
    const res = await postCheckout(key, { type: 'token', token: 'pm_doesnotexist0000' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'paymentMethod.token');
    assert.equal(await executionCount(key, 0), 0);
  });
});

describe('POST /checkouts when the provider cannot answer', () => {
  test('an unreachable provider is 503 psp_unavailable for a card and a token, and nothing starts', async () => {
    const down = await startApiHarness({
      temporalAddress: temporal.address,
      db: services.db,
      paymentMethods: createPaymentMethodClient(`http://127.0.0.1:${await freePort()}`, { apiKey: TEST_CREDENTIALS.pspApiKey }),
    });
    try {
      for (const paymentMethod of [{ type: 'card', number: CARDS.approve }, { type: 'token', token: 'pm_doesnotexist0000' }]) {
        const key = freshKey('pm-down');
        const res = await postCheckout(key, paymentMethod, down);
        assert.equal(res.status, 503, paymentMethod.type);
        assert.equal(res.body.error.code, 'psp_unavailable');
        assert.equal(res.body.error.dependency, 'psp');
        assert.match(res.body.error.message, /payment provider/);
        assert.ok(!JSON.stringify(res.body).includes(CARDS.approve));
        assert.equal(await executionCount(key, 0), 0, 'no run started');
      }
    } finally {
      await down.close();
    }
  });
});

describe('the API client of the provider vault', () => {
  let stub: Server;
  let stubUrl: string;
  /** What the stub answers next: a status, or null to never answer. */
  let answer: number | null = 500;

  before(async () => {
    stub = createServer((req, res) => {
      req.resume();
      if (answer === null) return; // hold it until the client gives up
      res.writeHead(answer, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'boom', message: 'boom' } }));
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });

  after(async () => {
    stub.closeAllConnections();
    await new Promise((resolve) => stub.close(resolve));
  });

  const unavailableWith = (pattern: RegExp) => (err: unknown) =>
    err instanceof HttpError && err.status === 503 && err.code === 'psp_unavailable' && pattern.test(err.message) && !err.message.includes(CARDS.approve);

  test('a 5xx, a 429 or no answer in time is 503 psp_unavailable', async () => {
    const client = createPaymentMethodClient(stubUrl, { apiKey: 'sk_unused', timeoutMs: 200 });
    for (const status of [500, 502, 429]) {
      answer = status;
      await assert.rejects(client.tokenise('k-1', CARDS.approve), unavailableWith(new RegExp(`answered ${status}`)));
      await assert.rejects(client.lookup('pm_1234567890'), unavailableWith(new RegExp(`answered ${status}`)));
    }
    answer = null;
    await assert.rejects(client.tokenise('k-2', CARDS.approve), unavailableWith(/did not answer within 200 ms/));
  });

  test('a provider that refuses our API key is 503, never a 401 the caller would take for its own', async () => {
    const client = createPaymentMethodClient(services.urls.psp, { apiKey: 'sk_not_a_key' });
    await assert.rejects(client.tokenise(freshKey('bad-key'), CARDS.approve), unavailableWith(/refused our API key \(401\)/));
    await assert.rejects(client.lookup('pm_1234567890'), unavailableWith(/refused our API key \(401\)/));
  });
});
