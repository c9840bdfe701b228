// POST /checkouts refuses at the door what it can know before a run starts: against the real
// inventory service's catalogue (seeded: TSHIRT-RED-M 19.99, MUG-LOGO 12.99, HOODIE-GREY-L 49.99,
// STICKER-PACK 3.99 EUR). A refused request starts no workflow and writes no row; one that passes
// starts a run whose input carries the catalogue's prices.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { createCatalogueClient } from '../../api/catalogue.ts';
import { freePort, startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { checkoutWorkflowId, orderIdFor, type CheckoutInput } from '../../shared/checkout.ts';
import { MAX_LINE_QUANTITY, MAX_ORDER_TOTAL_MINOR } from '../../shared/limits.ts';
import { AmountMinorKey } from '../../shared/search-attributes.ts';
import { startServiceStack, type ServiceStack } from '../services/harness.ts';
import { TEST_CREDENTIALS } from '../support/service-keys.ts';
import { checkoutBody, freshKey, startApiHarness, type ApiHarness } from './harness.ts';

let temporal: DevServer;
let services: ServiceStack;
let api: ApiHarness;

before(async () => {
  [temporal, services] = await Promise.all([startDevServer(), startServiceStack()]);
  api = await startApiHarness({
    temporalAddress: temporal.address,
    db: services.db,
    catalogue: createCatalogueClient(services.urls.inventory, { serviceKey: TEST_CREDENTIALS.serviceKey }),
  });
});

after(async () => {
  await api?.close();
  await services?.stop();
  await temporal?.stop();
});

const CUSTOMER = { role: 'customer' as const, subject: 'cust-ada' };

function postCheckout(key: string, body: unknown, harness: ApiHarness = api) {
  return harness.request('POST', '/checkouts', { body, headers: { 'Idempotency-Key': key }, as: CUSTOMER });
}

/** Proves a refused request left nothing behind: no run under its key, no order, no reservation. */
async function assertNothingStarted(key: string): Promise<void> {
  // A started run is visible to describe at once (visibility may lag; describe does not).
  await assert.rejects(api.client.workflow.getHandle(checkoutWorkflowId(key)).describe(), /not found/i, 'no workflow was started');
  assert.equal(await services.db.order.count({ where: { id: orderIdFor(key) } }), 0, 'no order row');
  assert.equal(await services.db.reservation.count({ where: { orderId: orderIdFor(key) } }), 0, 'no reservation');
}

describe('POST /checkouts refuses at the door', () => {
  test('an unknown SKU is 400 naming the line, and starts nothing', async () => {
    const key = freshKey('door-unknown-sku');
    const res = await postCheckout(
      key,
      checkoutBody({ lines: [{ sku: 'MUG-LOGO', quantity: 1 }, { sku: 'NO-SUCH-SKU', quantity: 1 }] }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'lines.1.sku');
    assert.match(res.body.error.message, /NO-SUCH-SKU/);
    await assertNothingStarted(key);
  });

  test('a quantity above the limit (10,001, 2^31) is 400 naming the line quantity', async () => {
    for (const quantity of [MAX_LINE_QUANTITY + 1, 10_001, 2 ** 31]) {
      const key = freshKey('door-quantity');
      const res = await postCheckout(key, checkoutBody({ lines: [{ sku: 'STICKER-PACK', quantity }] }));
      assert.equal(res.status, 400, String(quantity));
      assert.equal(res.body.error.field, 'lines.0.quantity');
      await assertNothingStarted(key);
    }
  });

  test('a total above the limit is 400 naming lines', async () => {
    // 50 lines is the most a checkout has, each within the quantity limit: prices make the total
    const skus = Array.from({ length: 3 }, (_, i) => `DOOR-PRICEY-${i}`);
    await services.db.stockItem.createMany({
      data: skus.map((sku) => ({ sku, name: sku, priceMinor: MAX_ORDER_TOTAL_MINOR / 2, currency: 'EUR', onHand: 10 })),
    });
    const key = freshKey('door-total');
    const res = await postCheckout(key, checkoutBody({ lines: skus.map((sku) => ({ sku, quantity: 1 })) }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'lines');
    assert.equal(res.body.error.subtotalMinor, 3 * (MAX_ORDER_TOTAL_MINOR / 2));
    await assertNothingStarted(key);
  });

  test('a currency outside ISO 4217 is 400 naming currency', async () => {
    const key = freshKey('door-zzz');
    const res = await postCheckout(key, checkoutBody({ currency: 'ZZZ' }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'currency');
    assert.match(res.body.error.message, /ISO 4217/);
    await assertNothingStarted(key);
  });

  test('a currency the catalogue does not sell in is 400 naming currency and the catalogue currency', async () => {
    const key = freshKey('door-usd');
    const res = await postCheckout(key, checkoutBody({ currency: 'USD' }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.field, 'currency');
    assert.equal(res.body.error.catalogueCurrency, 'EUR');
    assert.match(res.body.error.message, /in EUR, not USD/);
    await assertNothingStarted(key);
  });

  test('price tampering (HOODIE-GREY-L at 0.01) is 409 price_changed naming both prices, with nothing reserved', async () => {
    const key = freshKey('door-tamper');
    const res = await postCheckout(key, checkoutBody({ lines: [{ sku: 'HOODIE-GREY-L', quantity: 1, unitPriceMinor: 1 }] }));
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'price_changed');
    assert.equal(res.body.error.sku, 'HOODIE-GREY-L');
    assert.equal(res.body.error.quotedUnitPriceMinor, 1);
    assert.equal(res.body.error.catalogueUnitPriceMinor, 4999);
    assert.match(res.body.error.message, /49\.99 EUR/);
    await assertNothingStarted(key);
    assert.equal((await services.db.stockItem.findUniqueOrThrow({ where: { sku: 'HOODIE-GREY-L' } })).reserved, 0);
  });

  test('a catalogue that cannot be reached is 503 inventory_unavailable naming the dependency, and starts nothing', async () => {
    const cut = await startApiHarness({
      temporalAddress: temporal.address,
      db: services.db,
      catalogue: createCatalogueClient(`http://127.0.0.1:${await freePort()}`, { serviceKey: TEST_CREDENTIALS.serviceKey }),
    });
    try {
      const key = freshKey('door-no-inventory');
      const res = await postCheckout(key, checkoutBody(), cut);
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, 'inventory_unavailable');
      assert.equal(res.body.error.dependency, 'inventory');
      await assertNothingStarted(key);
    } finally {
      await cut.close();
    }
  });

  test('a path parameter with broken percent-encoding is 400, not 500', async () => {
    const res = await api.request('GET', '/checkouts/checkout-%E0%A4%A', { as: CUSTOMER });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_request');
    assert.match(res.body.error.message, /malformed path parameter/);
  });
});

describe('POST /checkouts prices from the catalogue', () => {
  test('a request without prices starts a run quoting the catalogue prices; its summary shows the real subtotal', async () => {
    const key = freshKey('door-priced');
    const res = await postCheckout(key, checkoutBody({ lines: [{ sku: 'HOODIE-GREY-L', quantity: 2 }, { sku: 'STICKER-PACK', quantity: 1 }] }));
    assert.equal(res.status, 202);
    const handle = api.client.workflow.getHandle(checkoutWorkflowId(key));
    const description = await handle.describe();
    assert.equal(description.typedSearchAttributes.get(AmountMinorKey), 2 * 4999 + 399);
    assert.match((await description.staticSummary()) ?? '', /103\.97 EUR/);
    const history = await handle.fetchHistory();
    // read through the API's data converter: the stored input is encrypted
    const payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    const input = await decodeFromPayloadsAtIndex<CheckoutInput>(api.client.options.loadedDataConverter, 0, payloads);
    assert.deepEqual(input.lines, [
      { sku: 'HOODIE-GREY-L', quantity: 2, unitPriceMinor: 4999 },
      { sku: 'STICKER-PACK', quantity: 1, unitPriceMinor: 399 },
    ]);
  });

  test('a request that quotes the catalogue price is accepted, and repeating it joins the same run', async () => {
    const key = freshKey('door-quoted');
    const body = checkoutBody({ lines: [{ sku: 'HOODIE-GREY-L', quantity: 1, unitPriceMinor: 4999 }] });
    const first = await postCheckout(key, body);
    assert.equal(first.status, 202);
    const again = await postCheckout(key, body);
    assert.equal(again.status, 202);
    assert.deepEqual(again.body, first.body);
  });
});
