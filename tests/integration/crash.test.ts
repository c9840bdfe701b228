// Kill -9 the worker process in the middle of a checkout, start a new one: the
// checkout completes, with exactly one reservation, one authorization and one
// capture at the provider.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { orderIdFor } from '../../shared/checkout.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { CARDS, postCheckout, snapshot, waitForOutcome, waitForStep } from '../support/checkout-client.ts';
import { authFor } from '../support/service-keys.ts';

let stack: TestStack;
before(async () => {
  stack = await startTestStack();
});
after(() => stack.stop());

async function setFaults(url: string, faults: object | null) {
  await fetch(`${url}/_faults`, {
    method: faults ? 'PUT' : 'DELETE',
    headers: { ...authFor('payments'), 'content-type': 'application/json' },
    body: faults ? JSON.stringify(faults) : undefined,
  });
}

test('a checkout survives its worker being killed mid-payment, with one reservation and one capture', async () => {
  const key = 'crash-1';
  const orderId = orderIdFor(key);
  const before = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-bob', orderId });

  const first = await stack.spawnWorkerProcess();
  // slow the authorization down so the worker dies while it is in flight
  await setFaults(stack.serviceUrls.payments, { latencyMs: 1500, path: '/payments/authorize' });
  const started = await postCheckout(stack, key, {
    customerId: 'cust-bob',
    currency: 'EUR',
    lines: [{ sku: 'TSHIRT-RED-M', quantity: 3, unitPriceMinor: 1999 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
  });
  assert.equal(started.status, 202);
  await waitForStep(stack, started.body.checkoutId, 'AUTHORIZING_PAYMENT');
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  await setFaults(stack.serviceUrls.payments, null);

  await stack.spawnWorkerProcess();
  const outcome = await waitForOutcome(stack, started.body.checkoutId, 90_000);
  assert.equal(outcome.status, 'PAID', JSON.stringify(outcome));

  const now = await snapshot(stack.database.db, { sku: 'TSHIRT-RED-M', customerId: 'cust-bob', orderId });
  assert.equal(now.order?.status, 'PAID');
  assert.equal(now.onHand, before.onHand - 3, 'stock taken exactly once');
  assert.equal(now.reserved, before.reserved);
  assert.equal(await stack.database.db.reservationLine.count({ where: { orderId } }), 1);
  assert.equal(now.authorizations, 1);
  assert.equal(now.captures, 1);
});
