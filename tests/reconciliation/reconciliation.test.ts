// Reconciliation on real parts (Temporal dev server, PostgreSQL, the services, the worker and
// the API) over a seeded set of mismatches written straight into the services' tables. Every
// case is found and either settled by its rule or handed to an operator, a transaction inside
// the boundary grace waits for the next run, a repeated run changes nothing, and afterwards the
// money invariants hold. Assertions read our report and the provider's own records.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Db } from '../../lib/db.ts';
import { checkMoneyInvariants } from '../../lib/invariants.ts';
import { ensureReconciliationSchedule } from '../../lib/schedules.ts';
import { checkoutStateQuery, checkoutWorkflowId, orderIdFor, type CheckoutInput } from '../../shared/checkout.ts';
import { paymentEventSignal } from '../../shared/payments.ts';
import { mismatchWorkflowId, RECONCILIATION_SCHEDULE_ID } from '../../shared/reconciliation.ts';
import { CHECKOUT_TASK_QUEUE } from '../../shared/task-queues.ts';
import type { Role } from '../../shared/permissions.ts';
import { refundWorkflowId, type RefundState } from '../../shared/refunds.ts';
import { reconciliationRefundRequestId } from '../../workflows/mismatch-resolution.ts';
import type { ReconciliationOptions, ReconciliationReport } from '../../workflows/reconciliation.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';
import { CARDS, tokeniseCard } from '../support/cards.ts';
import { authFor } from '../support/service-keys.ts';

let stack: TestStack;
let db: Db;
const T0 = new Date();
const ago = (ms: number) => new Date(T0.getTime() - ms);
const OLD = ago(10 * 60_000);
/** Inside run 1's boundary grace (60 s before its period end T0). */
const LATE = ago(20_000);

/** What each seeded case should become, by mismatch id. */
const CASE = {
  closedCheckout: 'status-mismatch:order-rc-closed:psp_rc_closed',
  cancelled: 'status-mismatch:order-rc-cancelled:psp_rc_cancelled',
  amount: 'amount-mismatch:order-rc-amount:psp_rc_amount',
  ghost: 'missing-ours:order-rc-ghost:psp_rc_ghost',
  late: 'status-mismatch:order-rc-late:psp_rc_late',
};

interface Seed {
  key: string;
  order?: { status: 'AWAITING_PAYMENT' | 'PAID' | 'CANCELLED'; totalMinor: number };
  ours?: { status: 'CAPTURE_PENDING' | 'CAPTURED'; capturedMinor: number };
  provider: { capturedMinor: number };
  at: Date;
}

async function seed({ key, order, ours, provider, at }: Seed): Promise<void> {
  const reference = `order-rc-${key}`;
  const pspPaymentId = `psp_rc_${key}`;
  const amountMinor = order?.totalMinor ?? provider.capturedMinor;
  if (order) {
    await db.order.create({
      data: {
        id: reference, checkoutId: `checkout-rc-${key}`, customerId: 'cust-rc', currency: 'EUR',
        subtotalMinor: order.totalMinor, totalMinor: order.totalMinor, status: order.status, createdAt: at, updatedAt: at,
      },
    });
  }
  await db.pspPayment.create({
    data: {
      id: pspPaymentId, merchantReference: reference, amountMinor, currency: 'EUR', cardLast4: '4242',
      status: 'CAPTURED', capturedMinor: provider.capturedMinor, createdAt: at, updatedAt: at,
    },
  });
  await db.pspTransaction.createMany({
    data: [
      { id: `txn_rc_${key}_auth`, paymentId: pspPaymentId, type: 'AUTHORIZATION', amountMinor, createdAt: at },
      { id: `txn_rc_${key}_cap`, paymentId: pspPaymentId, type: 'CAPTURE', amountMinor: provider.capturedMinor, createdAt: at },
    ],
  });
  if (ours) {
    await db.payment.create({
      data: {
        id: `pay_rc_${key}`, orderId: reference, amountMinor, currency: 'EUR', status: ours.status, pspPaymentId,
        capturedMinor: ours.capturedMinor, createdAt: at, updatedAt: at,
      },
    });
  }
}

let runs = 0;
async function reconcile(options: ReconciliationOptions): Promise<ReconciliationReport> {
  return stack.client.workflow.execute('reconciliation', {
    taskQueue: CHECKOUT_TASK_QUEUE,
    workflowId: `reconciliation-test-${process.pid}-${++runs}`,
    args: [{ completionWaitMs: 20_000, ...options }],
  });
}

/** Our report and the provider's money movements: what a run may change. */
async function moneyAndReport() {
  const mismatches = await db.reconciliationMismatch.findMany({ orderBy: { id: 'asc' } });
  const movements = await db.pspTransaction.findMany({ orderBy: { id: 'asc' }, select: { id: true, paymentId: true, type: true, amountMinor: true } });
  const payments = await db.pspPayment.findMany({ orderBy: { id: 'asc' }, select: { id: true, status: true, capturedMinor: true, refundedMinor: true } });
  const orders = await db.order.findMany({ orderBy: { id: 'asc' }, select: { id: true, status: true } });
  return { mismatches, movements, payments, orders };
}

const refundsOf = async (pspPaymentId: string) => db.pspTransaction.count({ where: { paymentId: pspPaymentId, type: 'REFUND' } });

/** The API as operations (who reads and resolves mismatches); `as` names another caller. */
async function api(method: string, path: string, body?: unknown, as: [Role, string] = ['operations', 'alice@ops']) {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await stack.tokenFor(...as)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The Refund workflow a mismatch's refund ran in, and its result. */
async function refundOf(mismatchId: string) {
  const handle = stack.client.workflow.getHandle(refundWorkflowId(reconciliationRefundRequestId(mismatchId)));
  return { description: await handle.describe(), result: (await handle.result()) as RefundState };
}

async function resolutionOf(mismatchId: string) {
  return stack.client.workflow.getHandle(mismatchWorkflowId(mismatchId)).result();
}

before(async () => {
  stack = await startTestStack();
  db = stack.database.db;
  await stack.startWorker();
  // paid at the provider, order still awaiting payment, and no checkout left to complete it
  await seed({ key: 'closed', order: { status: 'AWAITING_PAYMENT', totalMinor: 3000 }, ours: { status: 'CAPTURE_PENDING', capturedMinor: 0 }, provider: { capturedMinor: 3000 }, at: OLD });
  // captured for an order that was cancelled
  await seed({ key: 'cancelled', order: { status: 'CANCELLED', totalMinor: 2500 }, ours: { status: 'CAPTURED', capturedMinor: 2500 }, provider: { capturedMinor: 2500 }, at: OLD });
  // the provider captured less than the order's total
  await seed({ key: 'amount', order: { status: 'PAID', totalMinor: 5000 }, ours: { status: 'CAPTURED', capturedMinor: 5000 }, provider: { capturedMinor: 4500 }, at: OLD });
  // money at the provider for a reference we have no order or payment for
  await seed({ key: 'ghost', provider: { capturedMinor: 1800 }, at: OLD });
  // captured for a cancelled order, but only seconds before the period ends
  await seed({ key: 'late', order: { status: 'CANCELLED', totalMinor: 1200 }, ours: { status: 'CAPTURED', capturedMinor: 1200 }, provider: { capturedMinor: 1200 }, at: LATE });
});
after(() => stack.stop());

const FIRST_PERIOD: ReconciliationOptions = { periodStart: ago(60 * 60_000).toISOString(), periodEnd: T0.toISOString(), boundaryGraceMs: 60_000 };

test('the seeded set breaks the money invariants before reconciliation', async () => {
  const violations = await checkMoneyInvariants(db);
  assert.deepEqual(
    violations.map((v) => `${v.rule} ${v.reference}`).sort(),
    ['order-rc-cancelled', 'order-rc-closed', 'order-rc-ghost', 'order-rc-late'].map((r) => `captured-without-paid-order ${r}`),
  );
});

test('every seeded mismatch is found: a refund for the cancelled order, the rest flagged, the late one left for later', async () => {
  const report = await reconcile(FIRST_PERIOD);
  const outcome = Object.fromEntries(report.mismatches.map((m) => [m.id, m.outcome]));
  assert.deepEqual(outcome, {
    [CASE.closedCheckout]: 'FLAGGED',
    [CASE.cancelled]: 'AUTO_RESOLVED',
    [CASE.amount]: 'FLAGGED',
    [CASE.ghost]: 'FLAGGED',
  });
  assert.deepEqual(report.deferredReferences, ['order-rc-late']);
  assert.equal(report.newMismatches, 4);

  const rows = Object.fromEntries((await db.reconciliationMismatch.findMany()).map((m) => [m.id, m]));
  assert.equal(rows[CASE.cancelled]?.status, 'AUTO_RESOLVED');
  assert.equal(rows[CASE.cancelled]?.action, 'refund');
  assert.equal(rows[CASE.closedCheckout]?.status, 'OPEN');
  assert.match(String((rows[CASE.closedCheckout]?.details as any).needsOperator), /not running/);
  assert.equal(rows[CASE.amount]?.kind, 'AMOUNT_MISMATCH');
  assert.equal(rows[CASE.amount]?.status, 'OPEN');
  assert.equal(rows[CASE.ghost]?.kind, 'MISSING_OURS');
  assert.equal(rows[CASE.ghost]?.status, 'OPEN');
  assert.equal(rows[CASE.late], undefined, 'inside the boundary grace: not flagged yet');

  // the provider refunded the cancelled order's capture, once
  assert.equal(await refundsOf('psp_rc_cancelled'), 1);
  const refunded = await db.pspPayment.findUniqueOrThrow({ where: { id: 'psp_rc_cancelled' } });
  assert.equal(refunded.refundedMinor, 2500);
  // through a Refund workflow, the run's child, approved by the reconciliation itself
  const refund = await refundOf(CASE.cancelled);
  assert.equal(refund.description.type, 'refund');
  assert.match(refund.description.parentExecution?.workflowId ?? '', /^reconciliation-test-/);
  assert.equal(refund.result.status, 'SUCCEEDED');
  assert.equal(refund.result.amountMinor, 2500);
  assert.deepEqual(refund.result.approval, { decision: 'not_required', by: 'reconciliation', reason: 'captured 2500 still held for cancelled order order-rc-cancelled' });
  // each flagged mismatch waits in its own workflow for an operator
  for (const id of [CASE.closedCheckout, CASE.amount, CASE.ghost]) {
    const description = await stack.client.workflow.getHandle(mismatchWorkflowId(id)).describe();
    assert.equal(description.status.name, 'RUNNING', id);
  }
  await assert.rejects(stack.client.workflow.getHandle(mismatchWorkflowId(CASE.cancelled)).describe(), WorkflowNotFoundError);
});

test('running the same period again changes nothing: same records, no second refund, no second operator workflow', async () => {
  const before = await moneyAndReport();
  const report = await reconcile(FIRST_PERIOD);
  assert.equal(report.newMismatches, 0);
  assert.equal(report.autoResolved, 0);
  assert.deepEqual(await moneyAndReport(), before);
  // one execution per flagged mismatch and per refund, ever (visibility may lag a moment behind)
  for (const workflowId of [...[CASE.closedCheckout, CASE.amount, CASE.ghost].map(mismatchWorkflowId), refundWorkflowId(reconciliationRefundRequestId(CASE.cancelled))]) {
    const runs = await waitFor(async () => {
      const { count } = await stack.client.workflow.count(`WorkflowId = '${workflowId}'`);
      return count > 0 ? count : null;
    });
    assert.equal(runs, 1, workflowId);
  }
});

test('the next run picks up the transaction that was inside the boundary grace and refunds it', async () => {
  const report = await reconcile({ periodStart: ago(60 * 60_000).toISOString(), boundaryGraceMs: 0 });
  assert.deepEqual(report.deferredReferences, []);
  assert.equal(report.mismatches.find((m) => m.id === CASE.late)?.outcome, 'AUTO_RESOLVED');
  assert.equal(report.newMismatches, 1);
  assert.equal(await refundsOf('psp_rc_late'), 1);
  assert.equal(await refundsOf('psp_rc_cancelled'), 1);
});

test('the API lists the open mismatches and the latest run', async () => {
  const open = await api('GET', '/reconciliation/mismatches?status=OPEN');
  assert.equal(open.status, 200);
  assert.deepEqual(open.body.mismatches.map((m: any) => m.id).sort(), [CASE.amount, CASE.ghost, CASE.closedCheckout].sort());
  const latest = await api('GET', '/reconciliation/runs/latest');
  assert.equal(latest.status, 200);
  assert.equal(latest.body.newMismatches, 1);
  assert.equal(latest.body.autoResolved, 1);
  assert.ok(latest.body.finishedAt);
  assert.equal((await api('GET', '/reconciliation/mismatches?status=SOMETIMES')).status, 400);
});

test('an operator resolves the amount mismatch through the API; its workflow completes and the record says who and why', async () => {
  const decision = { action: 'accept', note: 'provider deducted a 500 fee; booked by finance' };
  const path = `/reconciliation/mismatches/${encodeURIComponent(CASE.amount)}/resolve`;
  // finance reads mismatches but does not resolve them
  assert.equal((await api('POST', path, decision, ['finance', 'fin-fay'])).status, 403);
  const resolved = await api('POST', path, decision);
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
  // the person is the token's subject, whatever the body says
  assert.deepEqual(resolved.body.resolution, { ...decision, by: 'alice@ops' });
  const result = await resolutionOf(CASE.amount);
  assert.equal(result.status, 'RESOLVED');
  assert.deepEqual(result.resolution, { ...decision, by: 'alice@ops' });
  const row = await db.reconciliationMismatch.findUniqueOrThrow({ where: { id: CASE.amount } });
  assert.equal(row.status, 'RESOLVED');
  assert.equal(row.action, 'accept');
  assert.equal(row.resolvedBy, 'alice@ops');
  assert.equal(row.resolutionNote, decision.note);

  const again = await api('POST', `/reconciliation/mismatches/${encodeURIComponent(CASE.amount)}/resolve`, decision);
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, 'already_resolved');
  assert.equal((await api('POST', '/reconciliation/mismatches/no-such-mismatch/resolve', decision)).status, 404);
  const invalid = await api('POST', `/reconciliation/mismatches/${encodeURIComponent(CASE.ghost)}/resolve`, { action: 'shred', note: 'y' });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.error.field, 'action');

  // the decision and the refused repeat are in the audit log under the token's subject; the 403 and 400 are not
  const audit = await db.auditEntry.findMany({ where: { workflowId: mismatchWorkflowId(CASE.amount) }, orderBy: { id: 'asc' } });
  assert.deepEqual(
    audit.map((row) => [row.subject, row.action, row.outcome, row.code]),
    [
      ['alice@ops', 'mismatch.resolve', 'accepted', null],
      ['alice@ops', 'mismatch.resolve', 'refused', 'already_resolved'],
    ],
  );
});

test('an operator refunds the money of the closed checkout and the unknown capture', async () => {
  for (const id of [CASE.closedCheckout, CASE.ghost]) {
    const res = await api('POST', `/reconciliation/mismatches/${encodeURIComponent(id)}/resolve`, { action: 'refund', note: 'no order to fulfil' }, ['operations', 'bob@ops']);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await resolutionOf(id)).status, 'RESOLVED');
  }
  // a Refund workflow for our order's payment (approved by the operator), at the provider for the unknown one
  assert.equal(await refundsOf('psp_rc_closed'), 1);
  assert.equal(await refundsOf('psp_rc_ghost'), 1);
  const closed = await refundOf(CASE.closedCheckout);
  assert.equal(closed.description.parentExecution?.workflowId, mismatchWorkflowId(CASE.closedCheckout));
  assert.equal(closed.result.status, 'SUCCEEDED');
  assert.equal(closed.result.amountMinor, 3000);
  assert.deepEqual(closed.result.approval, { decision: 'not_required', by: 'bob@ops', reason: 'no order to fulfil' });
  await assert.rejects(
    stack.client.workflow.getHandle(refundWorkflowId(reconciliationRefundRequestId(CASE.ghost))).describe(),
    WorkflowNotFoundError,
    'no payment of ours: no Refund workflow',
  );
  const ghost = await db.pspPayment.findUniqueOrThrow({ where: { id: 'psp_rc_ghost' } });
  assert.equal(ghost.refundedMinor, 1800);
  const open = await api('GET', '/reconciliation/mismatches?status=OPEN');
  assert.deepEqual(open.body.mismatches, []);
});

test('once everything is settled a run changes nothing, and the money invariants hold', async () => {
  const before = await moneyAndReport();
  const first = await reconcile({ periodStart: ago(60 * 60_000).toISOString(), boundaryGraceMs: 0 });
  const second = await reconcile({ periodStart: ago(60 * 60_000).toISOString(), boundaryGraceMs: 0 });
  for (const report of [first, second]) {
    assert.equal(report.newMismatches, 0);
    assert.equal(report.autoResolved, 0);
    assert.equal(report.flagged, 0);
    // the accepted amount difference is still there, and stays accepted
    assert.deepEqual(report.mismatches, [{ id: CASE.amount, kind: 'AMOUNT_MISMATCH', outcome: 'ALREADY_KNOWN' }]);
  }
  assert.deepEqual(await moneyAndReport(), before);
  assert.deepEqual(await checkMoneyInvariants(db), []);
});

test('a capture a running checkout has not heard of is completed by nudging that checkout', async () => {
  const key = `rc-running-${process.pid}`;
  const orderId = orderIdFor(key);
  const workflowId = checkoutWorkflowId(key);
  // no provider notifications reach the checkout, and it asks on its own only once a minute
  await fetch(`${stack.serviceUrls.psp}/v1/chaos`, {
    method: 'PUT',
    headers: { ...authFor('psp'), 'content-type': 'application/json' },
    body: JSON.stringify({ dropRate: 1 }),
  });
  try {
    const input: CheckoutInput = {
      checkoutKey: key,
      customerId: 'cust-alice',
      currency: 'EUR',
      lines: [{ sku: 'MUG-LOGO', quantity: 1, unitPriceMinor: 1299 }],
      paymentMethod: await tokeniseCard(stack.serviceUrls.psp, CARDS.approve),
      timing: { firstPaymentCheckMs: 60_000, maxPaymentCheckIntervalMs: 60_000 },
    };
    const checkout = await stack.client.workflow.start('checkout', { taskQueue: CHECKOUT_TASK_QUEUE, workflowId, args: [input] });
    // stand in for the authorization's webhook, so the checkout goes on to capture
    const authorized = await waitFor(() => db.pspPayment.findFirst({ where: { merchantReference: orderId, status: 'AUTHORIZED' } }));
    await checkout.signal(paymentEventSignal, { eventId: 'test-authorized', type: 'payment.authorized', pspPaymentId: authorized.id, orderId });
    await waitFor(() => db.pspPayment.findFirst({ where: { merchantReference: orderId, status: 'CAPTURED' } }));
    assert.equal((await db.order.findUniqueOrThrow({ where: { id: orderId } })).status, 'AWAITING_PAYMENT');

    const report = await reconcile({ periodStart: ago(60 * 60_000).toISOString(), boundaryGraceMs: 0 });
    const id = `status-mismatch:${orderId}:${authorized.id}`;
    assert.equal(report.mismatches.find((m) => m.id === id)?.outcome, 'AUTO_RESOLVED');
    assert.equal((await db.order.findUniqueOrThrow({ where: { id: orderId } })).status, 'PAID');
    const state = await checkout.query(checkoutStateQuery);
    assert.equal(state.payment.source, 'signal', 'the nudge, not the checkout\'s own timer, found the capture');
    assert.equal((await checkout.result()).status, 'PAID');
    assert.equal(await db.pspTransaction.count({ where: { paymentId: authorized.id, type: 'CAPTURE' } }), 1);
    assert.equal((await db.reconciliationMismatch.findUniqueOrThrow({ where: { id } })).status, 'AUTO_RESOLVED');
    assert.deepEqual(await checkMoneyInvariants(db), []);
  } finally {
    await fetch(`${stack.serviceUrls.psp}/v1/chaos`, { method: 'DELETE', headers: authFor('psp') });
  }
});

test('POST /reconciliation/run starts a run now', async () => {
  const started = await api('POST', '/reconciliation/run', { boundaryGraceMs: 0 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const report: ReconciliationReport = await stack.client.workflow.getHandle(started.body.workflowId).result();
  assert.equal(report.newMismatches, 0);
  assert.equal((await api('POST', '/reconciliation/run', { periodStart: 'yesterday' })).status, 400);
});

test('the Schedule is created once, and a run it starts derives its period from its action time', async () => {
  assert.equal(await ensureReconciliationSchedule(stack.client, { every: '1 day' }), true);
  assert.equal(await ensureReconciliationSchedule(stack.client, { every: '1 hour' }), false, 'an existing Schedule is left alone');
  const schedule = stack.client.schedule.getHandle(RECONCILIATION_SCHEDULE_ID);
  try {
    const description = await schedule.describe();
    assert.equal(description.action.type === 'startWorkflow' && description.action.workflowType, 'reconciliation');
    assert.equal(description.spec.intervals?.[0]?.every, 24 * 60 * 60_000, 'still the first interval');

    const triggeredAt = Date.now();
    await schedule.trigger();
    const started = await waitFor(async () => {
      const [action] = (await schedule.describe()).info.recentActions;
      return action?.action.type === 'startWorkflow' ? action.action.workflow : null;
    });
    const report: ReconciliationReport = await stack.client.workflow.getHandle(started.workflowId).result();
    const end = new Date(report.periodEnd).getTime();
    assert.ok(Math.abs(end - triggeredAt) < 10_000, `period ends at the action time (${report.periodEnd})`);
    assert.equal(end - new Date(report.periodStart).getTime(), 24 * 60 * 60_000);
    assert.equal(report.newMismatches, 0);
  } finally {
    await schedule.delete();
  }
});

async function waitFor<T>(read: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value) return value;
    if (Date.now() > deadline) assert.fail('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
