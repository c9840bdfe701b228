// The provider's vault: a card number is exchanged for a `pm_…` token once (idempotent in the
// vault itself), payments name the card by token and keep each test card's behaviour, and the
// number is stored nowhere but psp_payment_methods, nor repeated in any answer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cardBrand } from '../../services/psp/cards.ts';
import { PAYMENT_METHOD_TOKEN } from '../../shared/payments.ts';
import { CARDS, startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspTimeoutCardMs: 300, pspChaos: { processingDelayMs: 100 } });
});
after(() => s.stop());

/** Not one of the simulator's test cards (a real Visa test number elsewhere). */
const NOT_A_TEST_CARD = '4111111111111111';

const tokenise = (number: string, key: string | null = uniqueId('pm-key')) =>
  s.post('psp', '/v1/payment_methods', { type: 'card', card: { number } }, key);
const pay = (paymentMethod: unknown, reference = uniqueId('ref')) =>
  s.post('psp', '/v1/payments', { amountMinor: 1000, currency: 'EUR', reference, paymentMethod });
const pspStatus = async (id: string) => (await s.get('psp', `/v1/payments/${id}`)).body.status as string;

describe('tokenising a card', () => {
  test('answers 201 with a pm_ token, brand and last4, and the same key and number answer 200 with the same token', async () => {
    const key = uniqueId('pm-key');
    const first = await tokenise(CARDS.approve, key);
    assert.equal(first.status, 201, first.text);
    assert.match(first.body.id, PAYMENT_METHOD_TOKEN);
    assert.deepEqual(first.body, { id: first.body.id, type: 'card', card: { brand: 'visa', last4: '4242' }, createdAt: first.body.createdAt });
    assert.equal(new Date(first.body.createdAt).toISOString(), first.body.createdAt);
    assert.ok(!first.text.includes(CARDS.approve));

    const again = await tokenise(CARDS.approve, key);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, first.body);
    assert.equal(await s.db.pspPaymentMethod.count({ where: { idempotencyKey: key } }), 1);
    // idempotent in the vault, never through the shared idempotency records
    assert.equal(await s.db.idempotencyRecord.count({ where: { scope: 'psp', key } }), 0);

    const another = await tokenise(CARDS.approve);
    assert.equal(another.status, 201);
    assert.notEqual(another.body.id, first.body.id, 'a new key is a new token, even for the same card');
  });

  test('the same Idempotency-Key with another number is 422 idempotency_key_reused, and the first token stands', async () => {
    const key = uniqueId('pm-key');
    const first = await tokenise(CARDS.approve, key);
    const reused = await tokenise(CARDS.declined, key);
    assert.equal(reused.status, 422);
    assert.equal(reused.body.error.code, 'idempotency_key_reused');
    assert.ok(!reused.text.includes(CARDS.approve) && !reused.text.includes(CARDS.declined), reused.text);
    const stored = await s.db.pspPaymentMethod.findUniqueOrThrow({ where: { idempotencyKey: key } });
    assert.equal(stored.id, first.body.id);
    assert.equal(stored.cardNumber, CARDS.approve);
  });

  test('a number that is not a test card is 400 on card.number, and the answer does not repeat it', async () => {
    const vaulted = await s.db.pspPaymentMethod.count();
    const unknown = await tokenise(NOT_A_TEST_CARD);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'card.number');
    assert.ok(!unknown.text.includes(NOT_A_TEST_CARD), unknown.text);

    const malformed = await tokenise('4242-4242');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.field, 'card.number');
    assert.ok(!malformed.text.includes('4242-4242'), malformed.text);

    const notACard = await s.post('psp', '/v1/payment_methods', { type: 'sepa_debit', card: { number: CARDS.approve } });
    assert.equal(notACard.status, 400);
    assert.equal(notACard.body.error.field, 'type');
    assert.equal(await s.db.pspPaymentMethod.count(), vaulted);
  });

  test('without an Idempotency-Key it is 400 naming the header', async () => {
    const answer = await tokenise(CARDS.approve, null);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'Idempotency-Key');
  });

  test('GET /v1/payment_methods/:id answers the same shape; an unknown id is 404', async () => {
    const created = (await tokenise(CARDS.insufficientFunds)).body;
    const read = await s.get('psp', `/v1/payment_methods/${created.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, { id: created.id, type: 'card', card: { brand: 'visa', last4: '9995' }, createdAt: created.createdAt });
    assert.ok(!read.text.includes(CARDS.insufficientFunds));
    const unknown = await s.get('psp', '/v1/payment_methods/pm_unknown0000000000');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
  });

  test('the brand comes from the number\'s leading digits', () => {
    const brands = {
      '4242424242424242': 'visa',
      '5555555555554444': 'mastercard',
      '5105105105105100': 'mastercard',
      '2223003122003222': 'mastercard',
      '2720990000000000': 'mastercard',
      '378282246310005': 'amex',
      '341111111111111': 'amex',
      '6011111111111117': 'discover',
      '6500000000000002': 'discover',
      '2721000000000000': 'unknown',
      '5600000000000000': 'unknown',
      '3530111333300000': 'unknown',
    };
    for (const [number, brand] of Object.entries(brands)) assert.equal(cardBrand(number), brand, number);
  });
});

describe('paying by token', () => {
  test('every test card keeps its outcome, and the payment records the vault\'s last4', async () => {
    await s.request('psp', 'PUT', '/v1/chaos', { processingDelayMs: 100, lateDecisionMs: 1_200 });
    try {
      const outcomes: [string, string, string | undefined][] = [
        [CARDS.approve, 'AUTHORIZED', undefined],
        [CARDS.declined, 'DECLINED', 'card_declined'],
        [CARDS.insufficientFunds, 'DECLINED', 'insufficient_funds'],
      ];
      for (const [card, status, declineCode] of outcomes) {
        const { token, last4 } = await s.paymentMethod(card);
        const created = await pay(token);
        assert.equal(created.status, 202, created.text);
        assert.equal(created.body.cardLast4, last4);
        await until(async () => (await pspStatus(created.body.id)) === status, 5_000);
        assert.equal((await s.get('psp', `/v1/payments/${created.body.id}`)).body.declineCode, declineCode);
      }

      const late = await pay((await s.paymentMethod(CARDS.approveLate)).token);
      assert.equal(late.status, 202);
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(await pspStatus(late.body.id), 'PENDING', 'past the normal processing delay, still undecided');
      await until(async () => (await pspStatus(late.body.id)) === 'AUTHORIZED', 5_000);
    } finally {
      await s.request('psp', 'DELETE', '/v1/chaos');
    }

    const reference = uniqueId('slow');
    const timedOut = await pay((await s.paymentMethod(CARDS.timeout)).token, reference);
    assert.equal(timedOut.status, 504);
    assert.equal(timedOut.body.error.code, 'processing_timeout');
    assert.equal(await s.db.pspPayment.count({ where: { merchantReference: reference } }), 0);
  });

  test('an unknown or malformed token, or a card number, is 400 on paymentMethod, creating nothing', async () => {
    const reference = uniqueId('ref');
    const unknown = await pay('pm_unknown0000000000', reference);
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.field, 'paymentMethod');
    assert.equal((await pay('tok_1234567890', reference)).body.error.field, 'paymentMethod');
    const oldShape = await s.post('psp', '/v1/payments', { amountMinor: 1000, currency: 'EUR', reference, card: { number: CARDS.approve } });
    assert.equal(oldShape.status, 400);
    assert.equal(oldShape.body.error.field, 'paymentMethod');
    assert.equal(await s.db.pspPayment.count({ where: { merchantReference: reference } }), 0);
  });
});

describe('the vault', () => {
  // Last in this file, so it scans what every test above left behind too.
  test('the card number is stored only in the vault', async () => {
    // a payment's whole life through the payments service: authorize, capture, refund
    const orderId = uniqueId('order');
    const sync = async () => (await s.post('payments', `/payments/${orderId}/sync`, {}, null)).body.status;
    const authorized = await s.post('payments', '/payments/authorize', {
      orderId,
      amountMinor: 2500,
      currency: 'EUR',
      paymentMethod: await s.paymentMethod(CARDS.approve),
    });
    assert.equal(authorized.status, 202, authorized.text);
    await until(async () => (await sync()) === 'AUTHORIZED', 5_000);
    await s.post('payments', `/payments/${orderId}/capture`);
    await until(async () => (await sync()) === 'CAPTURED', 5_000);
    const refund = await s.post('payments', `/payments/${orderId}/refunds`, { refundId: uniqueId('refund'), amountMinor: 2500, reason: 'returned' });
    assert.equal(refund.status, 202, refund.text);
    await until(async () => (await sync()) === 'REFUNDED', 5_000);
    // and every other card, once, paid at the provider directly
    for (const card of Object.values(CARDS)) await pay((await s.paymentMethod(card)).token);

    const vaulted = await s.db.pspPaymentMethod.findMany({ select: { cardNumber: true } });
    for (const card of Object.values(CARDS)) {
      assert.ok(vaulted.some((v) => v.cardNumber === card), `the vault holds ${card.slice(-4)}`);
    }
    assert.ok((await s.db.pspPayment.count({ where: { cardLast4: '4242' } })) > 0, 'payments record the last four digits');

    const tables = await s.db.$queryRawUnsafe<{ table_name: string }[]>(
      `SELECT table_name::text AS table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'psp_payment_methods'`,
    );
    assert.ok(tables.length > 10);
    const numbers = [...Object.values(CARDS), NOT_A_TEST_CARD];
    for (const { table_name: table } of tables) {
      const rows = await s.db.$queryRawUnsafe<{ row: string }[]>(`SELECT t::text AS row FROM "${table.replaceAll('"', '""')}" t`);
      for (const { row } of rows) {
        for (const number of numbers) assert.ok(!row.includes(number), `${table} holds a card number ending ${number.slice(-4)}`);
      }
    }
  });
});
