// POST /refunds against a real Temporal dev server (in memory, free ports), no worker: what a
// refund is started with, so operators find it in the Web UI before any worker has run it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import { refundWorkflowId } from '../../shared/refunds.ts';
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

before(async () => {
  server = await startDevServer();
  api = await startApiHarness({ temporalAddress: server.address });
});

after(async () => {
  await api?.close();
  await server?.stop();
});

describe('POST /refunds in the Temporal Web UI', () => {
  test('a refund inherits region, customer and currency from the order\'s checkout and starts with its summary', async () => {
    const key = freshKey('refund-origin');
    const checkout = await api.request('POST', '/checkouts', { body: checkoutBody({ region: 'uk' }), headers: { 'Idempotency-Key': key } });
    assert.equal(checkout.status, 202);
    assert.equal(checkout.body.checkoutId, checkoutWorkflowId(key));

    const requestId = freshKey('rf');
    const res = await api.request('POST', '/refunds', {
      body: { requestId, orderId: orderIdFor(key), amount: 1200, reason: 'damaged in transit', requestedBy: 'customer-service' },
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
    });
    assert.equal(res.status, 202);
    const description = await api.client.workflow.getHandle(refundWorkflowId(requestId)).describe();
    assert.equal(await description.staticSummary(), 'Refund in full of order legacy-42 · goodwill');
    assert.equal(description.typedSearchAttributes.get(RegionKey), undefined);
    assert.equal(description.typedSearchAttributes.get(CustomerIdKey), undefined);
    assert.equal(description.typedSearchAttributes.get(OrderIdKey), 'legacy-42');
  });
});
