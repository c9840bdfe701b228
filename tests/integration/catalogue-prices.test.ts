// The orders service prices every order from the catalogue, whoever starts the run: a checkout
// started past the API (the Temporal CLI, a script) with a stale quote or an unknown SKU ends
// CANCELLED with the reason, and leaves no order row and no reservation behind.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkoutWorkflowId, orderIdFor, type CheckoutInput, type CheckoutResult } from '../../shared/checkout.ts';
import { CHECKOUT_TASK_QUEUE } from '../../shared/task-queues.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import { CARDS, tokeniseCard } from '../support/cards.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
  await stack.startWorker();
});
after(() => stack.stop());

async function runCheckout(key: string, lines: CheckoutInput['lines'], currency = 'EUR'): Promise<CheckoutResult> {
  // straight to Temporal, so tokenised here as the API would
  const paymentMethod = await tokeniseCard(stack.serviceUrls.psp, CARDS.approve);
  const input: CheckoutInput = { checkoutKey: key, customerId: 'cust-bob', currency, lines, paymentMethod };
  const handle = await stack.client.workflow.start(WORKFLOW_TYPES.checkout, {
    workflowId: checkoutWorkflowId(key),
    taskQueue: CHECKOUT_TASK_QUEUE,
    args: [input],
  });
  return (await handle.result()) as CheckoutResult;
}

async function assertNothingWritten(key: string): Promise<void> {
  const db = stack.database.db;
  assert.equal(await db.order.count({ where: { id: orderIdFor(key) } }), 0, 'no order row');
  assert.equal(await db.reservation.count({ where: { orderId: orderIdFor(key) } }), 0, 'no reservation');
  assert.equal(await db.payment.count({ where: { orderId: orderIdFor(key) } }), 0, 'no payment');
}

test('a quote the catalogue no longer matches ends CANCELLED as PriceChanged, with nothing written', async () => {
  const db = stack.database.db;
  await db.stockItem.create({ data: { sku: 'IT-REPRICED', name: 'Repriced', priceMinor: 2500, currency: 'EUR', onHand: 5 } });
  const result = await runCheckout('it-price-changed', [{ sku: 'IT-REPRICED', quantity: 1, unitPriceMinor: 2000 }]);
  assert.equal(result.status, 'CANCELLED');
  assert.match(result.cancelReason ?? '', /^PriceChanged: .*2500.*2000/);
  await assertNothingWritten('it-price-changed');
  assert.equal((await db.stockItem.findUniqueOrThrow({ where: { sku: 'IT-REPRICED' } })).reserved, 0);
});

test('an unknown SKU ends CANCELLED as UnknownSku and leaves no cancelled order row', async () => {
  const result = await runCheckout('it-unknown-sku', [{ sku: 'IT-NO-SUCH-SKU', quantity: 1 }]);
  assert.equal(result.status, 'CANCELLED');
  assert.match(result.cancelReason ?? '', /^UnknownSku: .*IT-NO-SUCH-SKU/);
  await assertNothingWritten('it-unknown-sku');
});

test('another currency than the catalogue ends CANCELLED as CurrencyMismatch', async () => {
  const result = await runCheckout('it-usd', [{ sku: 'MUG-LOGO', quantity: 1 }], 'USD');
  assert.equal(result.status, 'CANCELLED');
  assert.match(result.cancelReason ?? '', /^CurrencyMismatch: MUG-LOGO is sold in EUR, not USD/);
  await assertNothingWritten('it-usd');
});

test('without a quote the order is charged at the catalogue price', async () => {
  const result = await runCheckout('it-no-quote', [{ sku: 'STICKER-PACK', quantity: 2 }]);
  assert.equal(result.status, 'PAID', JSON.stringify(result));
  assert.equal(result.subtotalMinor, 2 * 399);
  const order = await stack.database.db.order.findUniqueOrThrow({ where: { id: orderIdFor('it-no-quote') } });
  assert.equal(order.totalMinor, 2 * 399);
  const payment = await stack.database.db.payment.findUniqueOrThrow({ where: { orderId: orderIdFor('it-no-quote') } });
  assert.equal(payment.capturedMinor, 2 * 399);
});
