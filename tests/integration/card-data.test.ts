// Card numbers stay in the provider's vault. Every test card goes through a checkout made through
// the API with its number (and every paid one through a refund); then the whole exported history
// of every run (as the cluster holds it, and decrypted), every log line the API, services and
// worker wrote, every API answer and every database table outside the simulator's vault are
// searched for the numbers. Each search is first shown to find what it should (the token in the
// decrypted histories, a refused attempt's order id in the logs, the number in the vault), so a search that could
// not find anything cannot pass by accident.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Payload } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pg from 'pg';
import { setLogSink } from '../../lib/logger.ts';
import { EncryptionCodec } from '../../lib/payload-codec.ts';
import { orderIdFor } from '../../shared/checkout.ts';
import { CARDS } from '../support/cards.ts';
import { authorization, getCheckout, postCheckout, waitForOutcome, type Caller } from '../support/checkout-client.ts';
import { historyText, payloadsIn, TEST_KEY_RING } from '../support/payload-keys.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

const logLines: string[] = [];
const restoreSink = setLogSink((line) => logLines.push(line));
// The in-process worker's SDK and workflow logs (workflow.log goes through the runtime's logger).
Runtime.install({ logger: new DefaultLogger('INFO', (entry) => logLines.push(`${entry.message} ${JSON.stringify(entry.meta ?? {})}`)) });

let stack: TestStack;
const SUPPORT: Caller = ['support', 'sup-card-test'];
/** Every API answer's body, searched like the logs. */
const answers: string[] = [];

interface Outcome {
  card: keyof typeof CARDS;
  key: string;
  checkout: Record<string, any>;
  refund: Record<string, any> | null;
}
const outcomes: Outcome[] = [];

before(async () => {
  // the late card is decided after 2 s instead of a minute; the timeout card holds 300 ms per attempt
  stack = await startTestStack({ pspChaos: { lateDecisionMs: 2_000 }, pspTimeoutCardMs: 300 });
  await stack.startWorker();
  await Promise.all(
    (Object.keys(CARDS) as (keyof typeof CARDS)[]).map(async (card) => {
      const key = `card-data-${card}`;
      const started = await postCheckout(stack, key, {
        customerId: 'cust-card-test',
        currency: 'EUR',
        lines: [{ sku: 'MUG-LOGO', quantity: 1 }],
        paymentMethod: { type: 'card', number: CARDS[card] },
      });
      answers.push(JSON.stringify(started.body));
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const checkout = await waitForOutcome(stack, started.body.checkoutId, 120_000);
      answers.push(JSON.stringify(checkout));
      answers.push(JSON.stringify((await getCheckout(stack, started.body.checkoutId, ['customer', 'cust-card-test'])).body));
      const refund = checkout.status === 'PAID' ? await refundPart(key) : null;
      outcomes.push({ card, key, checkout, refund });
    }),
  );
});

after(async () => {
  restoreSink();
  await stack?.stop();
});

async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { ...(await authorization(stack, SUPPORT)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = { status: res.status, body: (await res.json()) as Record<string, any> };
  answers.push(JSON.stringify(answer.body));
  return answer;
}

const FINAL_REFUND_STATUSES = ['SUCCEEDED', 'REFUNDED_MANUALLY', 'REJECTED', 'ABANDONED'];

/** A partial refund of a paid checkout, through the API, until it has finished. */
async function refundPart(key: string): Promise<Record<string, any>> {
  const requested = await api('POST', '/refunds', { requestId: `${key}-refund`, orderId: orderIdFor(key), amount: 100, reason: 'card data test' });
  assert.equal(requested.status, 202, JSON.stringify(requested.body));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { body } = await api('GET', `/refunds/${encodeURIComponent(requested.body.refundId)}`);
    if (FINAL_REFUND_STATUSES.includes(body.status)) return body;
    if (Date.now() > deadline) assert.fail(`refund for ${key} did not finish: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const NUMBERS = Object.values(CARDS);

function hitsIn(text: string): string[] {
  return NUMBERS.filter((number) => text.includes(number));
}

test('every test card kept its outcome, paid by token', () => {
  const byCard = Object.fromEntries(outcomes.map((o) => [o.card, o]));
  assert.equal(byCard.approve!.checkout.status, 'PAID');
  assert.equal(byCard.approveLate!.checkout.status, 'PAID');
  assert.equal(byCard.declined!.checkout.status, 'CANCELLED');
  assert.equal(byCard.insufficientFunds!.checkout.status, 'CANCELLED');
  assert.equal(byCard.timeout!.checkout.status, 'CANCELLED');
  for (const card of ['approve', 'approveLate'] as const) assert.equal(byCard[card]!.refund?.status, 'SUCCEEDED', JSON.stringify(byCard[card]!.refund));
});

test('no history holds a card number, encrypted as stored or decrypted', async () => {
  const codec = new EncryptionCodec(TEST_KEY_RING);
  let runs = 0;
  let decryptedText = '';
  for await (const execution of stack.client.workflow.list()) {
    runs++;
    const history = await stack.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    assert.deepEqual(hitsIn(historyText(history)), [], `history of ${execution.workflowId} as stored`);
    const payloads = payloadsIn(history).map(({ payload }) => payload);
    const decoded: Payload[] = await codec.decode(payloads);
    const text = decoded.map((payload) => Buffer.from(payload.data ?? new Uint8Array()).toString('utf8')).join('\n');
    assert.deepEqual(hitsIn(text), [], `history of ${execution.workflowId} decrypted`);
    decryptedText += text;
  }
  // every checkout and every refund was exported, and decryption really shows what the runs carried
  assert.ok(runs >= outcomes.length + 2, `only ${runs} runs listed`);
  assert.match(decryptedText, /"token":"pm_[A-Za-z0-9]+"/);
  assert.match(decryptedText, /"last4":"4242"/);
});

test('no log line and no API answer holds a card number', () => {
  // the timeout card's refused attempts are logged with their order: proof the capture works
  assert.ok(logLines.some((line) => line.includes(orderIdFor('card-data-timeout'))), 'the logs were captured');
  assert.ok(answers.length > 10, 'the answers were captured');
  assert.deepEqual(hitsIn(logLines.join('\n')), []);
  assert.deepEqual(hitsIn(answers.join('\n')), []);
});

test('no database table outside the provider vault holds a card number', async () => {
  const db = new pg.Client({ connectionString: stack.database.url });
  await db.connect();
  try {
    const { rows: tables } = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
    );
    const searched: string[] = [];
    for (const { table_name: table } of tables) {
      const { rows } = await db.query<{ row: string }>(`SELECT t::text AS row FROM "${table}" t`);
      const found = hitsIn(rows.map((r) => r.row).join('\n'));
      if (table === 'psp_payment_methods') {
        // the vault: where the numbers are, and the proof the search finds them
        assert.deepEqual(found.sort(), [...NUMBERS].sort());
        continue;
      }
      assert.deepEqual(found, [], `table ${table}`);
      searched.push(table);
    }
    for (const expected of ['orders_orders', 'payments_payments', 'psp_payments', 'psp_events', 'webhook_events', 'idempotency_records', 'api_audit_log']) {
      assert.ok(searched.includes(expected), `table ${expected} was searched: ${searched.join(', ')}`);
    }
  } finally {
    await db.end();
  }
});
