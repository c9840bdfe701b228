// POST /refunds against a real Temporal dev server (in memory, free ports), no worker: what a
// refund is started with, so operators find it in the Web UI before any worker has run it, and
// what the request may not choose (its requester, a request id the system keeps for itself).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import { refundRequestIdFor } from '../../shared/checkout.ts';
import { reconciliationRefundRequestId, refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import {
  AmountMinorKey,
  CurrencyKey,
  CustomerIdKey,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { checkoutBody, freshKey, startApiHarness, type ApiHarness } from './harness.ts';

let server: DevServer;
let api: ApiHarness;
/** support-anna may request refunds. */
let anna: string;

before(async () => {
  server = await startDevServer();
  api = await startApiHarness({ temporalAddress: server.address });
  anna = await api.tokenFor('support', 'support-anna');
});

after(async () => {
  await api?.close();
  await server?.stop();
});

describe('POST /refunds in the Temporal Web UI', () => {
  test('a refund inherits region, customer and currency from the order\'s checkout and starts with its summary', async () => {
    const key = freshKey('refund-origin');
    const checkout = await api.request('POST', '/checkouts', {
      body: checkoutBody({ region: 'uk' }),
      headers: { 'Idempotency-Key': key },
      as: { role: 'customer', subject: 'cust-ada' },
    });
    assert.equal(checkout.status, 202);
    assert.equal(checkout.body.checkoutId, checkoutWorkflowId(key));

    const requestId = freshKey('rf');
    const res = await api.request('POST', '/refunds', {
      body: { requestId, orderId: orderIdFor(key), amount: 1200, reason: 'damaged in transit' },
      token: anna,
    });
    assert.equal(res.status, 202);
    const description = await api.client.workflow.getHandle(refundWorkflowId(requestId)).describe();
    assert.equal(await description.staticSummary(), `Refund 12.00 EUR of order ${orderIdFor(key)} · damaged in transit`);
    const attributes = description.typedSearchAttributes;
    assert.equal(attributes.get(FlowStatusKey), 'VALIDATING');
    assert.equal(attributes.get(NeedsAttentionKey), false);
    assert.equal(attributes.get(OrderIdKey), orderIdFor(key));
    assert.equal(attributes.get(AmountMinorKey), 1200);
    assert.equal(attributes.get(CurrencyKey), 'EUR');
    assert.equal(attributes.get(RegionKey), 'uk');
    assert.equal(attributes.get(CustomerIdKey), 'cust-ada');
  });

  test('a refund of an order no checkout owns starts without region or customer', async () => {
    const requestId = freshKey('rf-foreign');
    const res = await api.request('POST', '/refunds', {
      body: { requestId, orderId: 'legacy-42', amount: 'full', reason: 'goodwill' },
      token: anna,
    });
    assert.equal(res.status, 202);
    const description = await api.client.workflow.getHandle(refundWorkflowId(requestId)).describe();
    assert.equal(await description.staticSummary(), 'Refund in full of order legacy-42 · goodwill');
    assert.equal(description.typedSearchAttributes.get(RegionKey), undefined);
    assert.equal(description.typedSearchAttributes.get(CustomerIdKey), undefined);
    assert.equal(description.typedSearchAttributes.get(OrderIdKey), 'legacy-42');
  });
});

describe('POST /refunds: what the caller cannot choose', () => {
  test('the requester is the token\'s subject; a requestedBy in the body changes nothing', async () => {
    const requestId = freshKey('rf-requester');
    const res = await api.request('POST', '/refunds', {
      body: { requestId, orderId: 'legacy-7', amount: 500, reason: 'goodwill', requestedBy: 'someone-else' },
      token: anna,
    });
    assert.equal(res.status, 202);
    const history = await api.client.workflow.getHandle(refundWorkflowId(requestId)).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    // read through the API's data converter: the stored input is encrypted
    const input = await decodeFromPayloadsAtIndex<RefundInput>(api.client.options.loadedDataConverter, 0, started!.input!.payloads);
    assert.equal(input.requestedBy, 'support-anna');
  });

  test('a requestId the system keeps for its own refunds is refused with 400 naming requestId, and starts nothing', async () => {
    for (const requestId of [refundRequestIdFor(freshKey('squat')), reconciliationRefundRequestId(`amount-mismatch:${freshKey('o')}:psp_1`)]) {
      const res = await api.request('POST', '/refunds', { body: { requestId, orderId: 'legacy-8', amount: 'full', reason: 'mine now' }, token: anna });
      assert.equal(res.status, 400, requestId);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.field, 'requestId');
      const { count } = await api.client.workflow.count(`WorkflowId = '${refundWorkflowId(requestId)}'`);
      assert.equal(count, 0);
    }
  });
});
