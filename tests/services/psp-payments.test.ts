// The payment-provider simulator's API: asynchronous decisions, capture at most
// once, void rules (including "paid after our timeout"), refunds capped by the
// capture under concurrency, and the settlement report's window.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CARDS, startServiceStack, uniqueId, until, type ServiceStack } from './harness.ts';

let s: ServiceStack;
before(async () => {
  s = await startServiceStack({ pspTimeoutCardMs: 300, pspChaos: { processingDelayMs: 100 } });
});
after(() => s.stop());

/** Pays with a test card's token (POST /v1/payment_methods first, as the API does). */
const create = async (card: string = CARDS.approve, amountMinor = 1000, reference = uniqueId('ref')) =>
  s.post('psp', '/v1/payments', { amountMinor, currency: 'EUR', reference, paymentMethod: (await s.paymentMethod(card)).token });
const status = async (id: string) => (await s.get('psp', `/v1/payments/${id}`)).body.status as string;
const transactions = async (paymentId: string) =>
  (await s.db.pspTransaction.findMany({ where: { paymentId }, orderBy: { createdAt: 'asc' } })).map((t) => t.type);
const eventTypes = async (paymentId: string) =>
  (await s.db.pspEvent.findMany({ where: { paymentId }, orderBy: { createdAt: 'asc' } })).map((e) => e.type);
const refund = (paymentId: string, amountMinor: number, reference = uniqueId('refund'), key?: string) =>
  s.post('psp', `/v1/payments/${paymentId}/refunds`, { amountMinor, reference }, key);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` with chaos knobs set, e.g. a slow decision so a test can act while a payment is pending. */
async function withChaos(knobs: Record<string, unknown>, work: () => Promise<void>) {
  await s.request('psp', 'PUT', '/v1/chaos', knobs);
  try {
    await work();
  } finally {
    await s.request('psp', 'DELETE', '/v1/chaos');
  }
}
const SLOW = { processingDelayMs: 1_000 };

async function captured(amountMinor = 1000) {
  const { body } = await create(CARDS.approve, amountMinor);
  await until(async () => (await status(body.id)) === 'AUTHORIZED');
  await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor });
  await until(async () => (await status(body.id)) === 'CAPTURED');
  return body.id as string;
}

describe('psp simulator', () => {
  test('authorize answers 202 PENDING and is decided later, with one AUTHORIZATION', async () => {
    const reference = uniqueId('ref');
    let created: Awaited<ReturnType<typeof create>> = undefined!;
    await withChaos(SLOW, async () => {
      created = await create(CARDS.approve, 1000, reference);
      assert.deepEqual(await transactions(created.body.id), []);
    });
    assert.equal(created.status, 202);
    assert.deepEqual(
      { id: created.body.id, status: created.body.status, amountMinor: created.body.amountMinor, currency: created.body.currency, reference: created.body.reference },
      { id: created.body.id, status: 'PENDING', amountMinor: 1000, currency: 'EUR', reference },
    );
    await until(async () => (await status(created.body.id)) === 'AUTHORIZED', 5_000);
    assert.deepEqual(await transactions(created.body.id), ['AUTHORIZATION']);
    assert.deepEqual(await eventTypes(created.body.id), ['payment.authorized']);

    const listed = await s.get('psp', `/v1/payments?reference=${reference}`);
    assert.equal(listed.body.length, 1);
    assert.deepEqual(
      (({ id, reference: r, status: st, amountMinor, capturedMinor, refundedMinor, currency }) => ({ id, r, st, amountMinor, capturedMinor, refundedMinor, currency }))(listed.body[0]),
      { id: created.body.id, r: reference, st: 'AUTHORIZED', amountMinor: 1000, capturedMinor: 0, refundedMinor: 0, currency: 'EUR' },
    );
  });

  test('a declined card stays PENDING with no decline code until decided, then DECLINED with no money movement', async () => {
    const created = await create(CARDS.declined);
    assert.equal(created.status, 202);
    assert.equal(created.body.declineCode, undefined);
    await until(async () => (await status(created.body.id)) === 'DECLINED');
    assert.equal((await s.get('psp', `/v1/payments/${created.body.id}`)).body.declineCode, 'card_declined');
    assert.deepEqual(await transactions(created.body.id), []);
    assert.deepEqual(await eventTypes(created.body.id), ['payment.declined']);
  });

  test('capture is 202 CAPTURE_PENDING, then 200 with the current state, and captures exactly once', () => withChaos(SLOW, async () => {
    const { body } = await create();
    const early = await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor: 1000 });
    assert.equal(early.status, 409);
    assert.equal(early.body.error.code, 'not_authorized');
    await until(async () => (await status(body.id)) === 'AUTHORIZED', 5_000);

    assert.equal((await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor: 1001 })).status, 400);
    const first = await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor: 1000 });
    assert.equal(first.status, 202);
    assert.equal(first.body.status, 'CAPTURE_PENDING');
    const again = await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor: 1000 });
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'CAPTURE_PENDING');
    await until(async () => (await status(body.id)) === 'CAPTURED', 5_000);
    const late = await s.post('psp', `/v1/payments/${body.id}/capture`, { amountMinor: 1000 });
    assert.equal(late.status, 200);
    assert.equal(late.body.capturedMinor, 1000);
    assert.equal((await s.post('psp', `/v1/payments/${body.id}/void`)).body.error.code, 'already_captured');
    assert.deepEqual(await transactions(body.id), ['AUTHORIZATION', 'CAPTURE']);
    assert.deepEqual(await eventTypes(body.id), ['payment.authorized', 'payment.captured']);
  }));

  test('voiding a pending payment stops its decision; voiding an authorized one records a VOID', async () => {
    let pending = '';
    await withChaos({ processingDelayMs: 500 }, async () => {
      pending = (await create()).body.id;
      const voided = await s.post('psp', `/v1/payments/${pending}/void`);
      assert.equal(voided.status, 200);
      assert.equal(voided.body.status, 'VOIDED');
    });
    await sleep(700);
    assert.equal(await status(pending), 'VOIDED');
    assert.deepEqual(await transactions(pending), []);
    assert.deepEqual(await eventTypes(pending), ['payment.voided']);

    const authorized = (await create()).body.id;
    await until(async () => (await status(authorized)) === 'AUTHORIZED');
    assert.equal((await s.post('psp', `/v1/payments/${authorized}/void`)).body.status, 'VOIDED');
    assert.equal((await s.post('psp', `/v1/payments/${authorized}/void`)).status, 200);
    assert.deepEqual(await transactions(authorized), ['AUTHORIZATION', 'VOID']);

    const declined = (await create(CARDS.declined)).body.id;
    await until(async () => (await status(declined)) === 'DECLINED');
    assert.equal((await s.post('psp', `/v1/payments/${declined}/void`)).body.error.code, 'not_authorized');
  });

  test('paidAfterTimeout: a pending payment refuses void with 409 payment_processing and is authorized later', async () => {
    await s.request('psp', 'PUT', '/v1/chaos', { paidAfterTimeout: true, lateDecisionMs: 1_500 });
    let id: string;
    try {
      id = (await create(CARDS.approve)).body.id;
      const key = uniqueId('void');
      const refused = await s.post('psp', `/v1/payments/${id}/void`, {}, key);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'payment_processing');
      await sleep(300);
      assert.equal(await status(id), 'PENDING'); // past the normal processing delay, still undecided
      await until(async () => (await status(id)) === 'AUTHORIZED', 5_000);
      // the refusal was not stored under its key: the same void now goes through
      const retried = await s.post('psp', `/v1/payments/${id}/void`, {}, key);
      assert.equal(retried.status, 200);
      assert.equal(retried.headers.get('idempotent-replayed'), null);
      assert.deepEqual(await transactions(id), ['AUTHORIZATION', 'VOID']);
    } finally {
      await s.request('psp', 'DELETE', '/v1/chaos');
    }
    assert.equal((await s.get('psp', '/v1/chaos')).body.paidAfterTimeout, false);
  });

  test('the late card is approved only after lateDecisionMs', async () => {
    await s.request('psp', 'PUT', '/v1/chaos', { lateDecisionMs: 1_500, processingDelayMs: 100 });
    try {
      const id = (await create(CARDS.approveLate)).body.id;
      await sleep(300);
      assert.equal(await status(id), 'PENDING');
      await until(async () => (await status(id)) === 'AUTHORIZED', 5_000);
    } finally {
      await s.request('psp', 'DELETE', '/v1/chaos');
    }
  });

  test('chaos settings can be read, changed and reset; unknown knobs are refused', async () => {
    const defaults = (await s.get('psp', '/v1/chaos')).body;
    assert.equal(defaults.processingDelayMs, 100); // the stack's default
    assert.equal(defaults.lateDecisionMs, 60_000);
    const changed = await s.request('psp', 'PUT', '/v1/chaos', { duplicateRate: 0.5, reorder: true });
    assert.equal(changed.body.duplicateRate, 0.5);
    assert.equal(changed.body.reorder, true);
    assert.equal((await s.request('psp', 'PUT', '/v1/chaos', { dropRate: 2 })).status, 400);
    assert.equal((await s.request('psp', 'PUT', '/v1/chaos', { bogus: 1 })).status, 400);
    assert.deepEqual((await s.request('psp', 'DELETE', '/v1/chaos')).body, defaults);
  });

  test('a refund is taken on PENDING with its amount held, then SUCCEEDED with one REFUND and refund.succeeded', async () => {
    const notCaptured = (await create()).body.id;
    await until(async () => (await status(notCaptured)) === 'AUTHORIZED');
    assert.equal((await refund(notCaptured, 1)).body.error.code, 'not_captured');

    const id = await captured(1000);
    let part: Awaited<ReturnType<typeof refund>> = undefined!;
    await withChaos(SLOW, async () => {
      part = await refund(id, 400, 'refund-a');
      assert.equal(part.status, 202);
      assert.match(part.body.refundId, /^re_/);
      assert.equal(part.body.status, 'PENDING');
      assert.equal(part.body.reference, 'refund-a');
      assert.equal(part.body.amountMinor, 400);
      // held at once: 601 more would pass the capture although nothing has moved yet
      const tooMuch = await refund(id, 601);
      assert.equal(tooMuch.status, 409);
      assert.equal(tooMuch.body.error.code, 'refund_exceeds_captured');
      assert.equal(tooMuch.body.error.refundableMinor, 600);
      assert.deepEqual(await transactions(id), ['AUTHORIZATION', 'CAPTURE']);
      assert.equal((await s.get('psp', `/v1/payments/${id}`)).body.refundPendingMinor, 400);
    });
    await until(async () => (await s.get('psp', `/v1/refunds/${part.body.refundId}`)).body.status === 'SUCCEEDED', 5_000);
    const decided = (await s.get('psp', `/v1/refunds/${part.body.refundId}`)).body;
    assert.deepEqual(
      { ...decided, createdAt: undefined },
      { refundId: part.body.refundId, paymentId: id, reference: 'refund-a', amountMinor: 400, currency: 'EUR', status: 'SUCCEEDED', failureReason: null, createdAt: undefined },
    );
    assert.equal(await status(id), 'CAPTURED');

    const rest = await refund(id, 600, 'refund-b');
    assert.equal(rest.status, 202);
    await until(async () => (await status(id)) === 'REFUNDED', 5_000);
    const truth = (await s.get('psp', `/v1/payments/${id}`)).body;
    assert.equal(truth.refundedMinor, 1000);
    assert.equal(truth.refundPendingMinor, 0);
    assert.deepEqual(await transactions(id), ['AUTHORIZATION', 'CAPTURE', 'REFUND', 'REFUND']);
    assert.equal((await eventTypes(id)).filter((t) => t === 'refund.succeeded').length, 2);
    assert.equal((await s.get('psp', '/v1/refunds/re_unknown')).status, 404);
    assert.equal((await s.post('psp', `/v1/payments/${id}/refunds`, { amountMinor: 1 })).body.error.field, 'reference');
  });

  test('rejectRefunds fails every refund when decided: refund_rejected, hold released, no money moved', async () => {
    const id = await captured(1000);
    let rejected: Awaited<ReturnType<typeof refund>> = undefined!;
    await withChaos({ rejectRefunds: true, processingDelayMs: 100 }, async () => {
      rejected = await refund(id, 1000, 'refund-rejected');
      assert.equal(rejected.status, 202);
      assert.equal(rejected.body.failureReason, null); // told only once decided
    });
    await until(async () => (await s.get('psp', `/v1/refunds/${rejected.body.refundId}`)).body.status === 'FAILED', 5_000);
    assert.equal((await s.get('psp', `/v1/refunds/${rejected.body.refundId}`)).body.failureReason, 'refund_rejected');
    const truth = (await s.get('psp', `/v1/payments/${id}`)).body;
    assert.equal(truth.status, 'CAPTURED');
    assert.equal(truth.refundedMinor, 0);
    assert.equal(truth.refundPendingMinor, 0);
    assert.deepEqual(await transactions(id), ['AUTHORIZATION', 'CAPTURE']);
    assert.deepEqual((await eventTypes(id)).filter((t) => t.startsWith('refund.')), ['refund.failed']);

    // the released hold can be refunded again, now that the provider accepts refunds
    const again = await refund(id, 1000, 'refund-rejected');
    assert.equal(again.status, 202);
    await until(async () => (await status(id)) === 'REFUNDED', 5_000);
    assert.equal((await s.db.pspRefund.findMany({ where: { reference: 'refund-rejected' } })).length, 2);
  });

  test('a repeated request lands on the same refund, by Idempotency-Key and by (payment, key) once the record is gone', async () => {
    const id = await captured(1000);
    const first = await refund(id, 300, 'refund-repeat', 'refund:refund-repeat:1');
    const replay = await refund(id, 300, 'refund-repeat', 'refund:refund-repeat:1');
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.body.refundId, first.body.refundId);
    await s.db.idempotencyRecord.deleteMany({ where: { scope: 'psp', key: 'refund:refund-repeat:1' } });
    const lost = await refund(id, 300, 'refund-repeat', 'refund:refund-repeat:1');
    assert.equal(lost.status, 200);
    assert.equal(lost.body.refundId, first.body.refundId);
    await until(async () => (await s.get('psp', `/v1/refunds/${first.body.refundId}`)).body.status === 'SUCCEEDED', 5_000);
    assert.equal(await s.db.pspRefund.count({ where: { paymentId: id } }), 1);
    assert.deepEqual((await transactions(id)).filter((t) => t === 'REFUND'), ['REFUND']);
  });

  test('ten concurrent refunds never hold or refund more than the captured amount', async () => {
    const id = await captured(1000);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => refund(id, 300, `refund-c${i}`)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [202, 202, 202, 409, 409, 409, 409, 409, 409, 409]);
    await until(async () => (await s.db.pspRefund.count({ where: { paymentId: id, status: 'SUCCEEDED' } })) === 3, 5_000);
    const refunds = await s.db.pspTransaction.findMany({ where: { paymentId: id, type: 'REFUND' } });
    assert.equal(refunds.reduce((sum, r) => sum + r.amountMinor, 0), 900);
    assert.equal((await s.get('psp', `/v1/payments/${id}`)).body.refundedMinor, 900);
    assert.equal(await s.db.pspRefund.count({ where: { paymentId: id } }), 3);
  });

  test('the settlement report includes `from` and excludes `to`', async () => {
    const id = await captured(700);
    const rows = await s.db.pspTransaction.findMany({ where: { paymentId: id }, orderBy: { createdAt: 'asc' } });
    const [authorization, capture] = rows as [(typeof rows)[number], (typeof rows)[number]];
    assert.ok(authorization.createdAt < capture.createdAt);
    const report = async (from: Date, to: Date) =>
      (await s.get('psp', `/v1/settlements?from=${from.toISOString()}&to=${to.toISOString()}`)).body;

    const exact = await report(authorization.createdAt, capture.createdAt);
    assert.deepEqual(exact.transactions.filter((t: { paymentId: string }) => t.paymentId === id).map((t: { type: string }) => t.type), ['AUTHORIZATION']);
    const [row] = exact.transactions.filter((t: { paymentId: string }) => t.paymentId === id);
    assert.deepEqual(row, {
      id: authorization.id,
      paymentId: id,
      reference: (await s.db.pspPayment.findUniqueOrThrow({ where: { id } })).merchantReference,
      type: 'AUTHORIZATION',
      amountMinor: 700,
      currency: 'EUR',
      createdAt: authorization.createdAt.toISOString(),
    });
    const next = await report(capture.createdAt, new Date(capture.createdAt.getTime() + 1));
    assert.deepEqual(next.transactions.filter((t: { paymentId: string }) => t.paymentId === id).map((t: { type: string }) => t.type), ['CAPTURE']);
    const empty = await report(capture.createdAt, capture.createdAt);
    assert.deepEqual(empty.transactions, []);
    assert.equal(exact.from, authorization.createdAt.toISOString());

    const bad = await s.get('psp', '/v1/settlements?from=yesterday&to=today');
    assert.equal(bad.status, 400);
  });

  test('the timeout card holds the request, then 504 processing_timeout, creating nothing', async () => {
    const started = Date.now();
    const answer = await create(CARDS.timeout, 1000, 'slow');
    assert.equal(answer.status, 504);
    assert.equal(answer.body.error.code, 'processing_timeout');
    assert.ok(Date.now() - started >= 250);
    assert.equal(await s.db.pspPayment.count({ where: { merchantReference: 'slow' } }), 0);
  });
});
