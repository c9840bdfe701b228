// The checkout routes against a real Temporal dev server (in memory, free ports), called as
// the customer cust-ada. No worker runs, so started checkouts stay RUNNING in the task queue:
// enough to prove validation, idempotency and lookup at the API's edge. What each role may do,
// and cancels the run accepts or refuses, are in permissions.test.ts (with a worker).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEV_FINGERPRINT_SECRET } from '../../lib/config.ts';
import { REQUEST_FINGERPRINT_MEMO, requestFingerprint } from '../../lib/request-fingerprint.ts';
import { canonicalJson } from '../../shared/canonical-json.ts';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import {
  AmountMinorKey,
  CheckoutStepKey,
  CurrencyKey,
  CustomerIdKey,
  DEFAULT_REGION,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { CHECKOUT_TASK_QUEUE } from '../../shared/task-queues.ts';
import { checkoutBody, freshKey, startApiHarness, TEMPORAL_UI_URL, type ApiHarness } from './harness.ts';

let server: DevServer;
let api: ApiHarness;
/** cust-ada's token: checkoutBody() is hers. */
let ada: string;

before(async () => {
  server = await startDevServer();
  api = await startApiHarness({ temporalAddress: server.address });
  ada = await api.tokenFor('customer', 'cust-ada');
});

after(async () => {
  await api?.close();
  await server?.stop();
});

function postCheckout(key: string | undefined, body: unknown = checkoutBody()) {
  return api.request('POST', '/checkouts', { body, token: ada, headers: key === undefined ? {} : { 'Idempotency-Key': key } });
}

/** Executions with this workflow id, as visibility sees them (waits for it to catch up). */
async function executionCount(workflowId: string, atLeast = 1): Promise<number> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { count } = await api.client.workflow.count(`WorkflowId = '${workflowId}'`);
    if (count >= atLeast || Date.now() > deadline) return count;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('POST /checkouts validation', () => {
  test('a checkout without an Idempotency-Key is refused with field Idempotency-Key', async () => {
    const res = await postCheckout(undefined);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'Idempotency-Key');
  });

  test('an Idempotency-Key with characters outside [A-Za-z0-9._:-] is refused', async () => {
    for (const key of ['has space', 'slash/inside', 'x'.repeat(101)]) {
      const res = await postCheckout(key);
      assert.equal(res.status, 400, key);
      assert.equal(res.body.error.field, 'Idempotency-Key');
    }
  });

  test('every invalid field is named, the first one in `field`', async () => {
    const key = freshKey('invalid-fields');
    const res = await postCheckout(
      key,
      checkoutBody({
        currency: 'eur',
        lines: [{ sku: 'MUG-LOGO', quantity: 0, unitPriceMinor: -1 }],
        paymentMethod: { type: 'card', number: '4242-4242' },
      }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'currency');
    assert.deepEqual(
      [...res.body.error.fields].sort(),
      ['currency', 'lines.0.quantity', 'lines.0.unitPriceMinor', 'paymentMethod.number'].sort(),
    );
    assert.equal(await executionCount(checkoutWorkflowId(key), 0), 0, 'an invalid request starts nothing');
  });

  test('duplicate SKUs are refused, naming the repeated line', async () => {
    const res = await postCheckout(
      freshKey('dup-sku'),
      checkoutBody({
        lines: [
          { sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 },
          { sku: 'TSHIRT-RED-M', quantity: 1, unitPriceMinor: 1999 },
          { sku: 'MUG-LOGO', quantity: 3, unitPriceMinor: 1299 },
        ],
      }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'lines.2.sku');
    assert.match(res.body.error.message, /duplicate SKU "MUG-LOGO"/);
  });

  test('a checkout needs 1 to 50 lines', async () => {
    const empty = await postCheckout(freshKey('no-lines'), checkoutBody({ lines: [] }));
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.field, 'lines');

    const lines = Array.from({ length: 51 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, unitPriceMinor: 100 }));
    const tooMany = await postCheckout(freshKey('many-lines'), checkoutBody({ lines }));
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.error.field, 'lines');
  });

  test('a payment method is a card with a 12 to 19 digit number or a provider token (pm_…), nothing else', async () => {
    const wrongType = await postCheckout(freshKey('paypal'), checkoutBody({ paymentMethod: { type: 'paypal', number: '4242424242424242' } }));
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.error.field, 'paymentMethod.type');

    const tooShort = await postCheckout(freshKey('short-card'), checkoutBody({ paymentMethod: { type: 'card', number: '42424242' } }));
    assert.equal(tooShort.status, 400);
    assert.equal(tooShort.body.error.field, 'paymentMethod.number');

    for (const token of ['tok_1234567890', 'pm_short', 'pm_has-dash-123456', '4242424242424242']) {
      const key = freshKey('malformed-token');
      const res = await postCheckout(key, checkoutBody({ paymentMethod: { type: 'token', token } }));
      assert.equal(res.status, 400, token);
      assert.equal(res.body.error.field, 'paymentMethod.token');
      assert.equal(await executionCount(checkoutWorkflowId(key), 0), 0, 'a malformed token starts nothing');
    }
    // a token is not a card: each variant takes only its own field
    const mixed = await postCheckout(freshKey('card-without-number'), checkoutBody({ paymentMethod: { type: 'card', token: 'pm_1234567890' } }));
    assert.equal(mixed.status, 400);
    assert.equal(mixed.body.error.field, 'paymentMethod.number');
  });

  test('a customerId that is not an opaque account id (an email, a name) is refused with field customerId', async () => {
    for (const customerId of ['anna@example.com', 'Anna Berg', 'x'.repeat(65)]) {
      const key = freshKey('personal-customer-id');
      // as that "customer", so the refusal is the format's, not the ownership check's
      const res = await api.request('POST', '/checkouts', {
        body: checkoutBody({ customerId }),
        as: { role: 'customer', subject: customerId },
        headers: { 'Idempotency-Key': key },
      });
      assert.equal(res.status, 400, customerId);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.field, 'customerId');
      assert.equal(await executionCount(checkoutWorkflowId(key), 0), 0, 'an invalid request starts nothing');
    }
  });

  test('a region that is not a lowercase code is refused with field region', async () => {
    const res = await postCheckout(freshKey('bad-region'), checkoutBody({ region: 'Europe' }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'region');
  });

  test('a body that is not JSON is a 400', async () => {
    const res = await postCheckout(freshKey('not-json'), '{"customerId":');
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
  });
});

describe('POST /checkouts in the Temporal Web UI', () => {
  test('a started checkout has its business summary and is findable before any worker ran it', async () => {
    const key = freshKey('summary');
    const res = await postCheckout(key, checkoutBody({ region: 'us' }));
    assert.equal(res.status, 202);
    const description = await api.client.workflow.getHandle(checkoutWorkflowId(key)).describe();
    // 2 × 12.99 + 1 × 19.99 at catalogue prices; no customer or card data
    assert.equal(await description.staticSummary(), `Checkout ${orderIdFor(key)} · 3 items · 45.97 EUR`);
    const attributes = description.typedSearchAttributes;
    assert.equal(attributes.get(FlowStatusKey), 'RUNNING');
    assert.equal(attributes.get(CheckoutStepKey), 'CREATING_ORDER');
    assert.equal(attributes.get(NeedsAttentionKey), false);
    assert.equal(attributes.get(OrderIdKey), orderIdFor(key));
    assert.equal(attributes.get(CustomerIdKey), 'cust-ada');
    assert.equal(attributes.get(AmountMinorKey), 4597);
    assert.equal(attributes.get(CurrencyKey), 'EUR');
    assert.equal(attributes.get(RegionKey), 'us');
  });

  test('a checkout that names no region is in the default one', async () => {
    const key = freshKey('default-region');
    assert.equal((await postCheckout(key)).status, 202);
    const description = await api.client.workflow.getHandle(checkoutWorkflowId(key)).describe();
    assert.equal(description.typedSearchAttributes.get(RegionKey), DEFAULT_REGION);
  });
});

describe('POST /checkouts idempotency', () => {
  test('repeating a POST with the same key returns the same checkout and starts one workflow', async () => {
    const key = freshKey('repeat');
    const first = await postCheckout(key);
    assert.equal(first.status, 202);
    const checkoutId = checkoutWorkflowId(key);
    assert.equal(first.body.checkoutId, checkoutId);
    assert.equal(first.body.orderId, orderIdFor(key));
    assert.equal(first.body.status, 'RUNNING');
    assert.equal(first.body.statusUrl, `/checkouts/${checkoutId}`);
    assert.equal(first.headers.get('location'), `/checkouts/${checkoutId}`);

    // same body with other key order and whitespace: still the same request
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(checkoutBody()).reverse()), null, 2);
    const second = await postCheckout(key, reordered);
    assert.equal(second.status, 202);
    assert.deepEqual(second.body, first.body);

    assert.equal(await executionCount(checkoutId), 1);
    const description = await api.client.workflow.getHandle(checkoutId).describe();
    assert.equal(description.type, 'checkout');
    assert.equal(description.taskQueue, CHECKOUT_TASK_QUEUE);
    assert.match(String(description.memo?.[REQUEST_FINGERPRINT_MEMO]), /^[0-9a-f]{64}$/);
    assert.equal(description.memo?.requestSha256, undefined, 'the plain hash is gone from memos');
    assert.equal(await description.staticSummary(), `Checkout ${orderIdFor(key)} · 3 items · 45.97 EUR`);
    assert.doesNotMatch((await description.staticDetails()) ?? '', /4242|cust-ada/, 'no card or customer data in the UI');
  });

  test('the same key with a different body is refused with 422 idempotency_key_reused', async () => {
    const key = freshKey('reused');
    assert.equal((await postCheckout(key)).status, 202);
    const res = await postCheckout(key, checkoutBody({ region: 'us' }));
    assert.equal(res.status, 422);
    assert.equal(res.body.error.code, 'idempotency_key_reused');
    assert.equal(await executionCount(checkoutWorkflowId(key)), 1);
  });

  test('the memo holds an HMAC of the request under the fingerprint secret, never its plain sha256', async () => {
    const key = freshKey('hmac');
    const body = checkoutBody();
    assert.equal((await postCheckout(key, body)).status, 202);
    const memo = (await api.client.workflow.getHandle(checkoutWorkflowId(key)).describe()).memo?.[REQUEST_FINGERPRINT_MEMO];
    assert.equal(memo, requestFingerprint(DEV_FINGERPRINT_SECRET, body));
    assert.notEqual(memo, createHash('sha256').update(canonicalJson(body)).digest('hex'), 'a plain hash of a guessed request would match it');

    // the same request to an API with another secret: another fingerprint
    const other = await startApiHarness({ temporalAddress: server.address, fingerprintSecret: 'fp_other_test_secret' });
    try {
      const otherKey = freshKey('hmac-other-secret');
      const res = await other.request('POST', '/checkouts', { body, as: { role: 'customer', subject: 'cust-ada' }, headers: { 'Idempotency-Key': otherKey } });
      assert.equal(res.status, 202);
      const otherMemo = (await other.client.workflow.getHandle(checkoutWorkflowId(otherKey)).describe()).memo?.[REQUEST_FINGERPRINT_MEMO];
      assert.equal(otherMemo, requestFingerprint('fp_other_test_secret', body));
      assert.notEqual(otherMemo, memo);
    } finally {
      await other.close();
    }
  });

  test('a closed checkout is reported, not restarted, when its POST is repeated', async () => {
    const key = freshKey('closed');
    const first = await postCheckout(key);
    const handle = api.client.workflow.getHandle(first.body.checkoutId);
    const { runId } = await handle.describe();
    await handle.terminate('test: operator stopped it');

    const again = await postCheckout(key);
    assert.equal(again.status, 202);
    assert.equal(again.body.checkoutId, first.body.checkoutId);
    assert.equal(again.body.status, 'FAILED');
    assert.equal((await handle.describe()).runId, runId, 'no new run');
    assert.equal(await executionCount(first.body.checkoutId), 1);
  });
});

describe('GET /checkouts/:id', () => {
  test('a running checkout reports RUNNING, its execution and a Web UI link', async () => {
    const key = freshKey('get-running');
    const { body: started } = await postCheckout(key);
    const res = await api.request('GET', started.statusUrl, { token: ada });
    assert.equal(res.status, 200);
    assert.equal(res.body.checkoutId, started.checkoutId);
    assert.equal(res.body.orderId, orderIdFor(key));
    assert.equal(res.body.status, 'RUNNING');
    assert.equal(res.body.execution.status, 'RUNNING');
    assert.equal(res.body.result, null);
    // no worker here to answer the state query: said so, not hidden
    assert.equal(res.body.state, null);
    assert.match(res.body.stateUnavailable, /no checkout worker answered/);
    assert.equal(
      res.body.webUiUrl,
      `${TEMPORAL_UI_URL}/namespaces/default/workflows/${started.checkoutId}/${res.body.execution.runId}/history`,
    );
  });

  test('an unknown checkout id is 404 not_found', async () => {
    const res = await api.request('GET', `/checkouts/${checkoutWorkflowId(freshKey('never-posted'))}`, { token: ada });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });

  test('the bare idempotency key is not a checkout id', async () => {
    const key = freshKey('bare-key');
    assert.equal((await postCheckout(key)).status, 202);
    const res = await api.request('GET', `/checkouts/${key}`, { token: ada });
    assert.equal(res.status, 404);
  });
});

describe('POST /checkouts/:id/cancel', () => {
  test('cancelling an unknown checkout is 404', async () => {
    const res = await api.request('POST', `/checkouts/${checkoutWorkflowId(freshKey('ghost'))}/cancel`, { body: {}, token: ada });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });

  test('cancelling a closed checkout is 409 already_completed, and the refusal is audited', async () => {
    const { body: started } = await postCheckout(freshKey('cancel-closed'));
    await api.client.workflow.getHandle(started.checkoutId).terminate('test: closed before cancel');
    const res = await api.request('POST', `${started.statusUrl}/cancel`, { body: { reason: 'too late' }, token: ada });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'already_completed');
    const [entry] = await api.db.auditEntry.findMany({ where: { workflowId: started.checkoutId } });
    assert.equal(entry?.subject, 'cust-ada');
    assert.equal(entry?.action, 'checkout.cancel');
    assert.equal(entry?.outcome, 'refused');
    assert.equal(entry?.code, 'already_completed');
  });

  test('with no worker to confirm it, a cancel answers 503 action_unconfirmed, not "done"', async () => {
    const { body: started } = await postCheckout(freshKey('cancel-no-worker'));
    const res = await api.request('POST', `${started.statusUrl}/cancel`, { body: { reason: 'changed my mind' }, token: ada });
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'action_unconfirmed');
    const [entry] = await api.db.auditEntry.findMany({ where: { workflowId: started.checkoutId } });
    assert.equal(entry?.outcome, 'unconfirmed');
  });
});
