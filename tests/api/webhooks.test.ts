// POST /webhooks/psp against a real Temporal dev server and a fresh database. No worker runs:
// a checkout started here stays RUNNING, and its history shows whether it was signalled.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createDb } from '../../lib/db.ts';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { signatureHeader } from '../../api/webhook-signature.ts';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import {
  checkoutBody, freshKey, startApiHarness, unreachableDatabaseUrl, unreachableTemporalAddress, type ApiHarness,
} from './harness.ts';

const SECRET = 'whsec_test_current';
const OLD_SECRET = 'whsec_test_previous';

let server: DevServer;
let database: TestDatabase;
let api: ApiHarness;

before(async () => {
  [server, database] = await Promise.all([startDevServer(), createTestDatabase('cf_webhooks')]);
  api = await startApiHarness({ temporalAddress: server.address, db: database.db, webhookSecrets: [SECRET, OLD_SECRET] });
});
after(async () => {
  await api?.close();
  await Promise.allSettled([server?.stop(), database?.drop()]);
});

let eventCounter = 0;
function pspEvent(reference: string, type = 'payment.authorized', id = `evt_${process.pid}_${++eventCounter}`) {
  return {
    id,
    type,
    createdAt: new Date().toISOString(),
    data: { paymentId: 'psp_123', reference, status: 'AUTHORIZED', amountMinor: 4990, currency: 'EUR' },
  };
}

const now = () => Math.floor(Date.now() / 1000);

/** Sends `body` exactly as given, signed (or not) as the options say. */
async function deliver(
  baseUrl: string,
  body: unknown,
  { secrets = [SECRET], timestamp = now(), signature, tamper }: { secrets?: string[]; timestamp?: number; signature?: string | null; tamper?: (raw: string) => string } = {},
) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const header = signature === undefined ? signatureHeader(secrets, timestamp, raw) : signature;
  if (header !== null) headers['Psp-Signature'] = header;
  const res = await fetch(`${baseUrl}/webhooks/psp`, { method: 'POST', headers, body: tamper ? tamper(raw) : raw });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A checkout that stays RUNNING (no worker polls its task queue). */
async function runningCheckout(): Promise<{ orderId: string; workflowId: string }> {
  const key = freshKey('wh');
  const workflowId = checkoutWorkflowId(key);
  await api.client.workflow.start('checkout', { workflowId, taskQueue: `no-worker-${process.pid}`, args: [checkoutBody()] });
  return { orderId: orderIdFor(key), workflowId };
}

async function paymentSignals(workflowId: string): Promise<number> {
  const history = await api.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'paymentEvent').length;
}

const recorded = (eventId: string) => database.db.webhookEvent.findUnique({ where: { eventId } });

describe('POST /webhooks/psp', () => {
  test('a genuine event is recorded once and signals the owning checkout', async () => {
    const { orderId, workflowId } = await runningCheckout();
    const event = pspEvent(orderId);
    const res = await deliver(api.baseUrl, event);

    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { received: true, eventId: event.id, signalOutcome: 'signaled' });
    const row = await recorded(event.id);
    assert.equal(row?.type, 'payment.authorized');
    assert.equal(row?.orderId, orderId);
    assert.equal(row?.pspPaymentId, 'psp_123');
    assert.equal(row?.signalOutcome, 'signaled');
    assert.ok(row?.signaledAt);
    assert.deepEqual(row?.payload, event);
    assert.equal(await paymentSignals(workflowId), 1);
  });

  test('the provider needs no token: its signature is its credential, and a bearer token changes nothing', async () => {
    const withToken = pspEvent('order-with-token');
    const raw = JSON.stringify(withToken);
    const res = await fetch(`${api.baseUrl}/webhooks/psp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer not-a-token',
        'Psp-Signature': signatureHeader([SECRET], now(), raw),
      },
      body: raw,
    });
    assert.equal(res.status, 200, await res.clone().text());
    // a token does not stand in for the signature
    const unsigned = pspEvent('order-token-only');
    const refused = await fetch(`${api.baseUrl}/webhooks/psp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await api.tokenFor('operations', 'ops-otto')}` },
      body: JSON.stringify(unsigned),
    });
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'invalid_signature');
    assert.equal(await recorded(unsigned.id), null);
  });

  test('a delivery larger than 64 kB is refused 413 before its signature is even read', async () => {
    const huge = { ...pspEvent('order-huge'), padding: 'x'.repeat(70_000) };
    const res = await deliver(api.baseUrl, huge);
    assert.equal(res.status, 413, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'payload_too_large');
    assert.equal(await recorded(huge.id), null);
  });

  test('a redelivered event is answered 200 duplicate and signals nothing more', async () => {
    const { orderId, workflowId } = await runningCheckout();
    const event = pspEvent(orderId);
    assert.equal((await deliver(api.baseUrl, event)).status, 200);
    const again = await deliver(api.baseUrl, event);

    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { received: true, eventId: event.id, duplicate: true });
    assert.equal(await database.db.webhookEvent.count({ where: { eventId: event.id } }), 1);
    assert.equal(await paymentSignals(workflowId), 1);
  });

  test('a forged signature is refused 401 invalid_signature and nothing is recorded', async () => {
    const { orderId, workflowId } = await runningCheckout();
    const event = pspEvent(orderId);
    const res = await deliver(api.baseUrl, event, { secrets: ['whsec_attacker'] });

    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'invalid_signature');
    assert.equal(await recorded(event.id), null);
    assert.equal(await paymentSignals(workflowId), 0);
  });

  test('a body changed after signing, a missing header or a malformed one is refused 401', async () => {
    const event = pspEvent('order-tampered');
    const tampered = await deliver(api.baseUrl, event, { tamper: (raw) => raw.replace('4990', '1') });
    const missing = await deliver(api.baseUrl, event, { signature: null });
    const malformed = await deliver(api.baseUrl, event, { signature: 'v1=deadbeef' });
    for (const res of [tampered, missing, malformed]) {
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'invalid_signature');
    }
    assert.equal(await recorded(event.id), null);
  });

  test('a genuine but stale delivery (a replay) is refused 400 timestamp_out_of_tolerance', async () => {
    const event = pspEvent('order-stale');
    const stale = await deliver(api.baseUrl, event, { timestamp: now() - 301 });
    const future = await deliver(api.baseUrl, event, { timestamp: now() + 301 });
    for (const res of [stale, future]) {
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, 'timestamp_out_of_tolerance');
    }
    assert.equal(await recorded(event.id), null);
    assert.equal((await deliver(api.baseUrl, event, { timestamp: now() - 290 })).status, 200, 'within tolerance it is accepted');
  });

  test('during a secret rotation either secret verifies, and a header carrying both is accepted', async () => {
    const byOld = await deliver(api.baseUrl, pspEvent('order-rot-1'), { secrets: [OLD_SECRET] });
    const byBoth = await deliver(api.baseUrl, pspEvent('order-rot-2'), { secrets: ['whsec_retired', SECRET] });
    assert.equal(byOld.status, 200);
    assert.equal(byBoth.status, 200);
  });

  test('an event for a payment we do not know is recorded and answered 200 (reconciliation will see it)', async () => {
    const foreign = pspEvent('ext-ref-42');
    const noCheckout = pspEvent(orderIdFor(freshKey('never-started')));
    for (const event of [foreign, noCheckout]) {
      const res = await deliver(api.baseUrl, event);
      assert.equal(res.status, 200);
      assert.equal(res.body.signalOutcome, 'no_running_checkout');
      assert.equal((await recorded(event.id))?.signalOutcome, 'no_running_checkout');
    }
  });

  test('a signed body that is not a valid event is refused 400 and not recorded', async () => {
    const notJson = await deliver(api.baseUrl, 'not json');
    assert.equal(notJson.status, 400);
    const { data: _data, ...noData } = pspEvent('order-x', 'payment.authorized', 'evt_shapeless');
    const shapeless = await deliver(api.baseUrl, noData);
    assert.equal(shapeless.status, 400);
    assert.equal(shapeless.body.error.code, 'invalid_request');
    assert.equal(await recorded('evt_shapeless'), null);
  });

  test('with Temporal down the event is still recorded and answered 200, noted signal_failed', async () => {
    const down = await startApiHarness({ temporalAddress: await unreachableTemporalAddress(), db: database.db, webhookSecrets: [SECRET] });
    try {
      const event = pspEvent(orderIdFor(freshKey('temporal-down')));
      const res = await deliver(down.baseUrl, event);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.signalOutcome, 'signal_failed');
      assert.equal((await recorded(event.id))?.signalOutcome, 'signal_failed');
    } finally {
      await down.close();
    }
  });

  test('with the database down the delivery is answered 503 database_unavailable, so the provider retries', async () => {
    const db = createDb(await unreachableDatabaseUrl());
    const down = await startApiHarness({ temporalAddress: server.address, db, webhookSecrets: [SECRET] });
    try {
      const res = await deliver(down.baseUrl, pspEvent('order-db-down'));
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, 'database_unavailable');
    } finally {
      await down.close();
      await db.$disconnect();
    }
  });
});
