// The permission table (shared/permissions.ts) on the routes of checkouts, refunds, /me and
// /audit, against the whole stack with a worker: anonymous → 401, a role without the permission
// → 403, another customer's checkout or refund → 404 exactly like an unknown id, the right role →
// the action happens. Operator actions are Temporal Updates: the run accepts or refuses them
// itself (four eyes is the workflow's own refusal), a refused one leaves no trace in the run's
// history, and the audit log holds both with the token's subject. Plus the hardening in front
// of every route: rate limit, malformed and oversized bodies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkoutWorkflowId, orderIdFor } from '../../shared/checkout.ts';
import type { Role } from '../../shared/permissions.ts';
import { refundWorkflowId } from '../../shared/refunds.ts';
import { CARDS, postCheckout, waitForOutcome } from '../support/checkout-client.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { freshKey, startApiHarness } from './harness.ts';

let stack: TestStack;

before(async () => {
  // The provider refuses every refund, so an approved refund stays running in NEEDS_OPERATOR.
  stack = await startTestStack({ pspChaos: { rejectRefunds: true } });
  await stack.startWorker();
});

after(async () => {
  await stack?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** One call to the stack's API, as `as` (role(s) and subject) or anonymously. */
async function call(method: string, path: string, { as, body, headers = {} }: { as?: [Role | Role[], string]; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const auth: Record<string, string> = as ? { authorization: `Bearer ${await stack.tokenFor(as[0], as[1])}` } : {};
  const init: RequestInit = { method, headers: { ...auth, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`${stack.apiUrl}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const ALICE: [Role, string] = ['customer', 'cust-alice'];
const BOB: [Role, string] = ['customer', 'cust-bob'];
const ANNA: [Role, string] = ['support', 'support-anna'];
const FAY: [Role, string] = ['finance', 'fin-fay'];
/** Support and finance at once: may request refunds and decide them, never both for one refund. */
const SAM: [Role[], string] = [['support', 'finance'], 'sam'];
const OLGA: [Role, string] = ['operations', 'ops-olga'];
const MIA: [Role, string] = ['marketing', 'mkt-mia'];

function checkoutOf(customerId: string, overrides: Record<string, unknown> = {}) {
  return {
    customerId,
    currency: 'EUR',
    lines: [{ sku: 'TSHIRT-RED-M', quantity: 6 }],
    paymentMethod: { type: 'card', number: CARDS.approve },
    ...overrides,
  };
}

function assertRefusal(res: Answer, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  assert.doesNotMatch(JSON.stringify(res.body), /\n\s+at |stack/i, 'no stack trace in an answer');
}

async function historyLength(workflowId: string): Promise<number> {
  return (await stack.client.workflow.getHandle(workflowId).fetchHistory()).events?.length ?? 0;
}

/** Polls GET /refunds/:id (as finance) until `done` holds. */
async function waitForRefund(refundId: string, done: (body: any) => boolean, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call('GET', `/refunds/${refundId}`, { as: FAY });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    if (done(res.body)) return res.body;
    if (Date.now() > deadline) assert.fail(`refund ${refundId} is ${res.body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function auditOf(workflowId: string): Promise<any[]> {
  const res = await call('GET', `/audit?workflowId=${encodeURIComponent(workflowId)}`, { as: OLGA });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.entries;
}

describe('GET /me', () => {
  test('answers the token\'s subject, roles and permissions; anonymous is 401', async () => {
    const me = await call('GET', '/me', { as: SAM });
    assert.equal(me.status, 200);
    assert.equal(me.body.subject, 'sam');
    assert.deepEqual([...me.body.roles].sort(), ['finance', 'support']);
    assert.ok(me.body.permissions.includes('refunds:request') && me.body.permissions.includes('refunds:decide'));
    assert.ok(!me.body.permissions.includes('audit:read'));

    const anonymous = await call('GET', '/me');
    assertRefusal(anonymous, 401, 'unauthorized');
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
  });
});

describe('checkouts', () => {
  let paidId: string;

  before(async () => {
    const key = freshKey('perm-paid');
    const started = await postCheckout(stack, key, checkoutOf('cust-alice'));
    assert.equal(started.status, 202, JSON.stringify(started.body));
    paidId = started.body.checkoutId;
    assert.equal((await waitForOutcome(stack, paidId)).status, 'PAID');
  });

  test('POST /checkouts: anonymous 401, staff 403, a customer only as themself, the customer 202', async () => {
    const key = freshKey('perm-start');
    const headers = { 'Idempotency-Key': key };
    assertRefusal(await call('POST', '/checkouts', { body: checkoutOf('cust-alice'), headers }), 401, 'unauthorized');
    assertRefusal(await call('POST', '/checkouts', { as: ANNA, body: checkoutOf('cust-alice'), headers }), 403, 'forbidden');
    assertRefusal(await call('POST', '/checkouts', { as: OLGA, body: checkoutOf('cust-alice'), headers }), 403, 'forbidden');

    const asOther = await call('POST', '/checkouts', { as: BOB, body: checkoutOf('cust-alice'), headers });
    assertRefusal(asOther, 403, 'forbidden');
    assert.equal(asOther.body.error.field, 'customerId');
    const { count } = await stack.client.workflow.count(`WorkflowId = '${checkoutWorkflowId(key)}'`);
    assert.equal(count, 0, 'a refused checkout starts nothing');

    const own = await call('POST', '/checkouts', { as: ALICE, body: checkoutOf('cust-alice', { paymentMethod: { type: 'card', number: CARDS.declined } }), headers });
    assert.equal(own.status, 202, JSON.stringify(own.body));
    assert.equal(own.body.checkoutId, checkoutWorkflowId(key));
  });

  test('GET /checkouts/:id: anonymous 401, marketing 403, another customer 404 like an unknown id, the owner and staff 200', async () => {
    const path = `/checkouts/${paidId}`;
    assertRefusal(await call('GET', path), 401, 'unauthorized');
    assertRefusal(await call('GET', path, { as: MIA }), 403, 'forbidden');

    const other = await call('GET', path, { as: BOB });
    const unknown = await call('GET', `/checkouts/${checkoutWorkflowId(freshKey('never'))}`, { as: BOB });
    assertRefusal(other, 404, 'not_found');
    assertRefusal(unknown, 404, 'not_found');
    assert.deepEqual(Object.keys(other.body.error).sort(), Object.keys(unknown.body.error).sort());
    assert.match(other.body.error.message, /^no checkout with id "/);

    for (const reader of [ALICE, ANNA, FAY, OLGA]) {
      const res = await call('GET', path, { as: reader });
      assert.equal(res.status, 200, `${reader[1]}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.status, 'PAID');
    }
  });

  test('POST /checkouts/:id/cancel: the owner\'s cancel is accepted by the run, audited with her subject', async () => {
    const key = freshKey('perm-cancel');
    // approved only after a minute: the checkout waits for the provider, capture has not started
    const started = await postCheckout(stack, key, checkoutOf('cust-alice', { paymentMethod: { type: 'card', number: '4000000000000259' } }));
    assert.equal(started.status, 202);
    const path = `/checkouts/${started.body.checkoutId}/cancel`;

    assertRefusal(await call('POST', path, { body: {} }), 401, 'unauthorized');
    assertRefusal(await call('POST', path, { as: ANNA, body: {} }), 403, 'forbidden');
    assertRefusal(await call('POST', path, { as: BOB, body: {} }), 404, 'not_found');

    const res = await call('POST', path, { as: ALICE, body: { reason: 'changed my mind' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.action, 'cancel');
    assert.equal(res.body.by, 'cust-alice');
    assert.equal(res.body.reason, 'changed my mind');
    assert.ok(res.body.state, 'the run answers with its state');
    assert.equal((await waitForOutcome(stack, started.body.checkoutId)).status, 'CANCELLED');

    const [entry] = await auditOf(started.body.checkoutId);
    assert.equal(entry.subject, 'cust-alice');
    assert.deepEqual(entry.roles, ['customer']);
    assert.equal(entry.action, 'checkout.cancel');
    assert.equal(entry.outcome, 'accepted');
    assert.equal(entry.request.reason, 'changed my mind');

    // the Update is in the run's history under the person's identity
    const history = await stack.client.workflow.getHandle(started.body.checkoutId).fetchHistory();
    const accepted = history.events?.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    assert.equal(accepted?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity, 'api:cust-alice');
  });

  test('cancelling a paid checkout answers 409 already_completed, audited as refused', async () => {
    const res = await call('POST', `/checkouts/${paidId}/cancel`, { as: OLGA, body: { reason: 'too late' } });
    assertRefusal(res, 409, 'already_completed');
    const [entry] = await auditOf(paidId);
    assert.equal(entry.subject, 'ops-olga');
    assert.equal(entry.outcome, 'refused');
    assert.equal(entry.code, 'already_completed');
  });
});

describe('refunds', () => {
  let orderId: string;
  let checkoutId: string;

  before(async () => {
    const key = freshKey('perm-refund');
    const started = await postCheckout(stack, key, checkoutOf('cust-alice'));
    checkoutId = started.body.checkoutId;
    orderId = orderIdFor(key);
    assert.equal((await waitForOutcome(stack, checkoutId)).status, 'PAID');
  });

  test('POST /refunds: anonymous 401, customer and finance 403, support 202 with the token as requester', async () => {
    const body = { requestId: freshKey('rf-perm'), orderId, amount: 100, reason: 'a stain' };
    assertRefusal(await call('POST', '/refunds', { body }), 401, 'unauthorized');
    assertRefusal(await call('POST', '/refunds', { as: ALICE, body }), 403, 'forbidden');
    assertRefusal(await call('POST', '/refunds', { as: FAY, body }), 403, 'forbidden');
    const res = await call('POST', '/refunds', { as: ANNA, body });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const state = await waitForRefund(res.body.refundId, (r) => r.state?.requestedBy !== undefined);
    assert.equal(state.state.requestedBy, 'support-anna');
  });

  test('four eyes: sam requests above the threshold and the workflow refuses his approval; fay approves', async () => {
    const requestId = freshKey('rf-four-eyes');
    const refundId = refundWorkflowId(requestId);
    // 6 × 19.99 = 119.94, above the 100.00 approval threshold
    const requested = await call('POST', '/refunds', { as: SAM, body: { requestId, orderId, amount: 'full', reason: 'never arrived' } });
    assert.equal(requested.status, 202, JSON.stringify(requested.body));
    await waitForRefund(refundId, (r) => r.status === 'AWAITING_APPROVAL');
    const approve = `/refunds/${refundId}/approve`;

    // who may read it: the order's customer and staff; not another customer, not marketing
    assert.equal((await call('GET', `/refunds/${refundId}`, { as: ALICE })).status, 200);
    assertRefusal(await call('GET', `/refunds/${refundId}`, { as: BOB }), 404, 'not_found');
    assertRefusal(await call('GET', `/refunds/${refundId}`, { as: MIA }), 403, 'forbidden');
    assertRefusal(await call('GET', `/refunds/${refundId}`), 401, 'unauthorized');

    // who may decide: not support, not the customer
    assertRefusal(await call('POST', approve, { as: ANNA, body: { reason: 'ok' } }), 403, 'forbidden');
    assertRefusal(await call('POST', approve, { as: ALICE, body: { reason: 'ok' } }), 403, 'forbidden');

    const before = await historyLength(refundId);
    const own = await call('POST', approve, { as: SAM, body: { reason: 'I checked it myself' } });
    assertRefusal(own, 409, 'four_eyes');
    assert.equal(await historyLength(refundId), before, 'a refused action leaves no trace in history');

    const approved = await call('POST', approve, { as: FAY, body: { reason: 'receipt checked' } });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.action, 'approve');
    assert.equal(approved.body.by, 'fin-fay');
    assert.equal(approved.body.state.approval.by, 'fin-fay');

    const entries = await auditOf(refundId);
    assert.deepEqual(
      entries.map((e) => [e.subject, e.action, e.outcome, e.code]),
      [
        ['fin-fay', 'refund.approve', 'accepted', null],
        ['sam', 'refund.approve', 'refused', 'four_eyes'],
      ],
      'newest first, the token\'s subjects',
    );

    // the provider refuses every refund here: the run waits for an operator
    await waitForRefund(refundId, (r) => r.status === 'NEEDS_OPERATOR');

    // an approval for a run that has moved on is refused by the run, and changes nothing
    const beforeLate = await historyLength(refundId);
    const late = await call('POST', approve, { as: FAY, body: { reason: 'again' } });
    assert.equal(late.status, 409, JSON.stringify(late.body));
    assert.ok(['already_decided', 'not_awaiting_approval'].includes(late.body.error.code), late.body.error.code);
    assert.equal(await historyLength(refundId), beforeLate);

    // intervening is finance's, not support's
    assertRefusal(await call('POST', `/refunds/${refundId}/abandon`, { as: ANNA, body: { reason: 'x' } }), 403, 'forbidden');
    const abandoned = await call('POST', `/refunds/${refundId}/abandon`, { as: FAY, body: { reason: 'customer accepted store credit' } });
    assert.equal(abandoned.status, 200, JSON.stringify(abandoned.body));
    assert.equal((await waitForRefund(refundId, (r) => r.execution.status === 'COMPLETED')).status, 'ABANDONED');
  });

  test('an action on an unknown refund, or on a run that is no refund, is 404 and sends nothing', async () => {
    assertRefusal(await call('POST', `/refunds/${refundWorkflowId(freshKey('ghost'))}/retry`, { as: FAY, body: { reason: 'x' } }), 404, 'not_found');
    assertRefusal(await call('POST', `/refunds/${checkoutId}/retry`, { as: FAY, body: { reason: 'x' } }), 404, 'not_found');
  });
});

describe('GET /audit', () => {
  test('is for operations only, newest first, filtered by subject', async () => {
    assertRefusal(await call('GET', '/audit'), 401, 'unauthorized');
    assertRefusal(await call('GET', '/audit', { as: FAY }), 403, 'forbidden');
    const res = await call('GET', '/audit?subject=fin-fay&limit=50', { as: OLGA });
    assert.equal(res.status, 200);
    assert.ok(res.body.entries.length > 0);
    assert.ok(res.body.entries.every((e: any) => e.subject === 'fin-fay'));
    const times = res.body.entries.map((e: any) => Date.parse(e.at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a));
  });

  test('the log only grows: rows cannot be deleted, and a settled row cannot be rewritten', async () => {
    const db = stack.database.db;
    const settled = await db.auditEntry.findFirstOrThrow({ where: { outcome: 'accepted' } });
    await assert.rejects(db.auditEntry.delete({ where: { id: settled.id } }), /append-only/);
    await assert.rejects(db.auditEntry.update({ where: { id: settled.id }, data: { subject: 'someone-else' } }), /append-only/);
    await assert.rejects(db.auditEntry.update({ where: { id: settled.id }, data: { outcome: 'refused' } }), /append-only/);
    assert.equal((await db.auditEntry.findUniqueOrThrow({ where: { id: settled.id } })).subject, settled.subject);
  });
});

describe('hardening', () => {
  test('malformed JSON is 400 and an oversized body 413, in the shared shape; anonymous bodies are not even read', async () => {
    const headers = { 'Idempotency-Key': freshKey('bad-json') };
    assertRefusal(await call('POST', '/checkouts', { as: ALICE, body: '{"customerId":', headers }), 400, 'invalid_request');
    const huge = JSON.stringify({ ...checkoutOf('cust-alice'), padding: 'x'.repeat(20_000) });
    assertRefusal(await call('POST', '/checkouts', { as: ALICE, body: huge, headers }), 413, 'payload_too_large');
    assertRefusal(await call('POST', '/checkouts', { body: huge, headers }), 401, 'unauthorized');
  });

  test('security headers are set on every answer', async () => {
    const res = await call('GET', '/healthz');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(res.headers.get('x-powered-by'), null);
  });

  test('past the per-client limit every route answers 429 rate_limited with the real Retry-After', async () => {
    const api = await startApiHarness({ temporalAddress: stack.temporal.address, rateLimitPerMinute: 2 });
    try {
      assert.equal((await api.request('GET', '/healthz')).status, 200);
      assert.equal((await api.request('GET', '/me')).status, 401);
      const limited = await api.request('GET', '/me', { as: { role: 'finance', subject: 'fin-fay' } });
      assertRefusal(limited, 429, 'rate_limited');
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter > 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    } finally {
      await api.close();
    }
  });
});
