// The operations API against a real Temporal dev server, with tokens from a development issuer.
// Listed runs are started straight with the search attributes a workflow would have upserted, on
// a queue no worker polls, so they wait exactly as the visibility store describes them; operator
// actions go to stand-in runs on a worker of their own, whose update validator accepts or refuses.
// Which actions a run accepts (and the caller may take) is a pure rule, tested on its own first;
// the permission table of these routes is tested route by route at the end.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import { ActivityFailure, ApplicationFailure, defaultPayloadConverter, RetryState, type SearchAttributePair } from '@temporalio/common';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
import { encodeErrorToFailure, encodeUserMetadata, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { decodeHistoryText, historyLines, type HistoryEvent } from '../../api/history-summary.ts';
import { ACTION_PERMISSIONS, actionsFor } from '../../api/operator-actions.ts';
import { DEFAULT_RUNS_QUERY, pageContentSecurityPolicy } from '../../api/routes/operations.ts';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import type { OperationsRun, RunHistory } from '../../shared/operations.ts';
import { permissionsOf, ROLE_PERMISSIONS, ROLES, type Permission, type Role } from '../../shared/permissions.ts';
import {
  AmountMinorKey,
  CurrencyKey,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { readHistoryFile } from '../support/histories.ts';
import { ONLY_B_KEY_RING, testDataConverter } from '../support/payload-keys.ts';
import type { StandInInput } from '../fixtures/workflows/operator-stand-ins.ts';
import { freshKey, startApiHarness, TEMPORAL_UI_URL, unreachableTemporalAddress, type ApiHarness, type Caller } from './harness.ts';

/** No worker polls it: runs started here stay RUNNING. */
const IDLE_QUEUE = 'operations-test-no-worker';
/** Polled by the stand-in worker (tests/fixtures/workflows/operator-stand-ins.ts). */
const STAND_IN_QUEUE = `operations-test-stand-ins-${process.pid}`;

const OPS: Caller = { role: 'operations', subject: 'ops-otto' };
const SUPPORT: Caller = { role: 'support', subject: 'sup-sam' };
const FINANCE: Caller = { role: 'finance', subject: 'fin-fay' };
const MARKETING: Caller = { role: 'marketing', subject: 'mkt-mo' };

describe('actions a run accepts', () => {
  const running = { needsAttention: true, running: true };
  /** Every permission: what the run accepts, whoever asks. */
  const anyone = permissionsOf([...ROLES]);

  test('a refund waiting for approval (or escalated) can be approved or rejected, nothing else', () => {
    for (const flowStatus of ['AWAITING_APPROVAL', 'ESCALATED']) {
      assert.deepEqual(actionsFor({ ...running, workflowType: 'refund', flowStatus }, anyone), ['approveRefund', 'rejectRefund']);
    }
  });

  test('a refund the provider refused offers retry, manual refund and abandon', () => {
    assert.deepEqual(actionsFor({ ...running, workflowType: 'refund', flowStatus: 'NEEDS_OPERATOR' }, anyone), [
      'retryRefund',
      'refundManually',
      'abandonRefund',
    ]);
  });

  test('a refund needing attention in any other state is a step in a slow retry: retryStep', () => {
    assert.deepEqual(actionsFor({ ...running, workflowType: 'refund', flowStatus: 'APPLYING_EFFECTS' }, anyone), ['retryStep']);
    assert.deepEqual(actionsFor({ ...running, needsAttention: false, workflowType: 'refund', flowStatus: 'APPLYING_EFFECTS' }, anyone), []);
  });

  test('a running checkout can be cancelled, and retried when a step is stuck', () => {
    assert.deepEqual(actionsFor({ ...running, workflowType: 'checkout', flowStatus: 'RUNNING' }, anyone), ['cancelCheckout', 'retryStep']);
    assert.deepEqual(actionsFor({ ...running, needsAttention: false, workflowType: 'checkout', flowStatus: 'RUNNING' }, anyone), ['cancelCheckout']);
    assert.deepEqual(actionsFor({ ...running, workflowType: 'checkout', flowStatus: 'PAID' }, anyone), ['retryStep']);
  });

  test('an open mismatch can be resolved; it has no step to retry', () => {
    assert.deepEqual(actionsFor({ ...running, workflowType: 'mismatchResolution', flowStatus: 'OPEN' }, anyone), ['resolveMismatch']);
    assert.deepEqual(actionsFor({ ...running, workflowType: 'mismatchResolution', flowStatus: 'RESOLVED' }, anyone), []);
  });

  test('a finished run, an unknown type or a missing FlowStatus accepts nothing it cannot', () => {
    assert.deepEqual(actionsFor({ needsAttention: true, running: false, workflowType: 'refund', flowStatus: 'AWAITING_APPROVAL' }, anyone), []);
    assert.deepEqual(actionsFor({ ...running, workflowType: 'couponIssuance', flowStatus: 'RUNNING' }, anyone), []);
    assert.deepEqual(actionsFor({ ...running, workflowType: 'refund', flowStatus: null }, anyone), ['retryStep']);
  });

  test('the page offers only what the role may do: support decides nothing, finance no retryStep, operations no refund decision', () => {
    const approval = { ...running, workflowType: 'refund', flowStatus: 'AWAITING_APPROVAL' };
    const stuckRefund = { ...running, workflowType: 'refund', flowStatus: 'NEEDS_OPERATOR' };
    const stuckCheckout = { ...running, workflowType: 'checkout', flowStatus: 'RUNNING' };
    const mismatch = { ...running, workflowType: 'mismatchResolution', flowStatus: 'OPEN' };
    const as = (...roles: Role[]) => permissionsOf(roles);

    for (const run of [approval, stuckRefund, stuckCheckout, mismatch]) assert.deepEqual(actionsFor(run, as('support')), []);
    assert.deepEqual(actionsFor(approval, as('finance')), ['approveRefund', 'rejectRefund']);
    assert.deepEqual(actionsFor(stuckRefund, as('finance')), ['retryRefund', 'refundManually', 'abandonRefund']);
    assert.deepEqual(actionsFor(stuckCheckout, as('finance')), []);
    assert.deepEqual(actionsFor(approval, as('operations')), []);
    assert.deepEqual(actionsFor(stuckCheckout, as('operations')), ['cancelCheckout', 'retryStep']);
    assert.deepEqual(actionsFor(mismatch, as('operations')), ['resolveMismatch']);
    assert.deepEqual(actionsFor(mismatch, as('customer', 'marketing')), []);
    // two roles together offer what either allows
    assert.deepEqual(actionsFor(stuckCheckout, as('finance', 'operations')), ['cancelCheckout', 'retryStep']);
  });

  test('every action names a permission some role holds', () => {
    for (const [action, permission] of Object.entries(ACTION_PERMISSIONS)) {
      assert.ok(anyone.has(permission), `${action}: ${permission}`);
    }
  });
});

describe('the history summary of a run', () => {
  const APPROVED = new URL('../fixtures/refund-histories/refund-replay-approved.json', import.meta.url).pathname;

  test('an approved refund reads as its steps by their summaries, the signal by name only, without workflow tasks', async () => {
    const history = await readHistoryFile(APPROVED);
    const events = history.events ?? [];
    const story = historyLines(events, await decodeHistoryText(events, loadDataConverter()));
    assert.equal(story.truncated, false);
    assert.deepEqual(
      story.events.map((line) => `${line.eventId} ${line.kind} ${line.text}`),
      [
        '1 workflowStarted Started refund',
        '6 activityScheduled Scheduled: Read the payment (readRefundablePayment)',
        '11 activityCompleted Completed: Read the payment (readRefundablePayment)',
        '15 activityScheduled Scheduled: Read the order (readOrderForRefund)',
        '17 activityCompleted Completed: Read the order (readOrderForRefund)',
        '22 timerStarted Waiting: timer for 86400 s', // recorded before timers had summaries
        '23 signalReceived Signal received: approve',
        '27 timerCanceled No longer waiting: timer for 86400 s',
        '29 activityScheduled Scheduled: Request the refund (requestProviderRefund)',
        '31 activityCompleted Completed: Request the refund (requestProviderRefund)',
        '35 timerStarted Waiting: timer for 3 s',
        '36 timerFired Time is up: timer for 3 s',
        '40 activityScheduled Scheduled: Ask the provider about the refund (syncProviderRefund)',
        '42 activityCompleted Completed: Ask the provider about the refund (syncProviderRefund)',
        '47 activityScheduled Scheduled: Record the refund on the order (recordOrderRefund)',
        '49 activityCompleted Completed: Record the refund on the order (recordOrderRefund)',
        '53 activityScheduled Scheduled: Read the loyalty award (readLoyaltyAward)',
        '55 activityCompleted Completed: Read the loyalty award (readLoyaltyAward)',
        '59 activityScheduled Scheduled: Reverse loyalty points (reverseLoyaltyPoints)',
        '61 activityCompleted Completed: Reverse loyalty points (reverseLoyaltyPoints)',
        '66 workflowCompleted Workflow completed',
      ],
    );
    assert.equal(story.events[0]?.time, '2036-11-26T20:27:36.521Z');
    // the approve signal carried {by: 'ops', reason: 'checked'}: an operator's words stay out
    assert.ok(!story.events.some((line) => /checked/.test(line.text)));
  });

  test('a long story keeps its newest lines and says it was cut', async () => {
    const events = (await readHistoryFile(APPROVED)).events ?? [];
    const story = historyLines(events, await decodeHistoryText(events, loadDataConverter()), 3);
    assert.equal(story.truncated, true);
    assert.deepEqual(story.events.map((line) => line.eventId), [59, 61, 66]);
  });

  test("an operator's update reads as its name and who sent it, never its arguments; a failed one says why", () => {
    const time = { seconds: 2_000_000_000, nanos: 0 };
    const accepted = (eventId: number, name: string, identity: string) => ({
      eventId,
      eventTime: time,
      workflowExecutionUpdateAcceptedEventAttributes: {
        acceptedRequest: { meta: { updateId: `u-${eventId}`, identity }, input: { name, args: { payloads: [defaultPayloadConverter.toPayload({ by: 'fin-fay', reason: 'private note' })] } } },
      },
    });
    const story = historyLines(
      [
        accepted(5, 'approve', 'api:fin-fay'),
        { eventId: 6, eventTime: time, workflowExecutionUpdateCompletedEventAttributes: { acceptedEventId: 5, outcome: { success: {} } } },
        accepted(9, 'retryStep', 'api:ops-otto'),
        {
          eventId: 10,
          eventTime: time,
          workflowExecutionUpdateCompletedEventAttributes: { acceptedEventId: 9, outcome: { failure: { message: 'wrapper', cause: { message: 'the step is no longer waiting' } } } },
        },
      ] as unknown as HistoryEvent[], // as a history read from JSON: plain numbers for int64
      { summaries: new Map(), failures: new Map() },
    );
    assert.deepEqual(
      story.events.map((line) => `${line.eventId} ${line.kind} ${line.text}`),
      [
        '5 updateAccepted Update accepted: approve by api:fin-fay',
        '6 updateCompleted Update completed: approve',
        '9 updateAccepted Update accepted: retryStep by api:ops-otto',
        '10 updateFailed Update failed: retryStep: the step is no longer waiting',
      ],
    );
    assert.ok(!story.events.some((line) => /private note/.test(line.text)));
  });

  test('an encrypted history reads the same: summaries and failure messages are decrypted; without the key only those quotes are lost', async () => {
    const converter = loadDataConverter(testDataConverter());
    const time = { seconds: 2_000_000_000, nanos: 0 };
    const declined = ApplicationFailure.nonRetryable('Card declined', 'PaymentDeclined');
    const failure = await encodeErrorToFailure(
      converter,
      new ActivityFailure('Activity task failed', 'authorizePayment', '3', RetryState.NON_RETRYABLE_FAILURE, 'worker', declined),
    );
    // what Temporal stores: a placeholder message, the real one in an encrypted payload
    assert.equal(failure.cause?.message, 'Encoded failure');
    assert.ok(!Buffer.from(failure.cause?.encodedAttributes?.data ?? []).toString('latin1').includes('Card declined'));
    const events = [
      {
        eventId: 5,
        eventTime: time,
        userMetadata: await encodeUserMetadata(converter, 'Authorize the payment', undefined),
        activityTaskScheduledEventAttributes: { activityType: { name: 'authorizePayment' } },
      },
      { eventId: 7, eventTime: time, activityTaskFailedEventAttributes: { scheduledEventId: 5, failure } },
    ] as unknown as HistoryEvent[];

    const story = historyLines(events, await decodeHistoryText(events, converter));
    assert.deepEqual(story.events.map((line) => `${line.eventId} ${line.kind} ${line.text}`), [
      '5 activityScheduled Scheduled: Authorize the payment (authorizePayment)',
      '7 activityFailed Failed: Authorize the payment (authorizePayment): Card declined',
    ]);

    // an API whose ring lacks the key still tells the story, and says why a message is missing
    const blind = historyLines(events, await decodeHistoryText(events, loadDataConverter(testDataConverter(ONLY_B_KEY_RING))));
    assert.equal(blind.events[0]?.text, 'Scheduled: authorizePayment');
    assert.match(blind.events[1]?.text ?? '', /^Failed: authorizePayment: \(not readable here: .*"test-a"/);
  });
});

describe('the operations API', () => {
  let server: DevServer;
  let api: ApiHarness;
  let worker: Worker;
  let workerRunning: Promise<void>;
  let workerConnection: NativeConnection;

  before(async () => {
    server = await startDevServer();
    api = await startApiHarness({ temporalAddress: server.address });
    workerConnection = await NativeConnection.connect({ address: server.address });
    worker = await Worker.create({
      connection: workerConnection,
      namespace: 'default',
      taskQueue: STAND_IN_QUEUE,
      dataConverter: testDataConverter(),
      workflowsPath: fileURLToPath(new URL('../fixtures/workflows/operator-stand-ins.ts', import.meta.url)),
    });
    workerRunning = worker.run();
  });

  after(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await workerRunning?.catch(() => {});
    await workerConnection?.close();
    await api?.close();
    await server?.stop();
  });

  async function startRun(type: string, attributes: SearchAttributePair[], summary?: string): Promise<{ workflowId: string; runId: string }> {
    const workflowId = freshKey(type);
    const handle = await api.client.workflow.start(type, {
      workflowId,
      taskQueue: IDLE_QUEUE,
      args: [],
      typedSearchAttributes: attributes,
      ...(summary ? { staticSummary: summary } : {}),
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  }

  /** A `checkout` run on the stand-in worker: it accepts retryStep only when a step waits. */
  async function startStandIn(input: StandInInput): Promise<string> {
    const workflowId = freshKey('checkout-stand-in');
    await api.client.workflow.start('checkout', { workflowId, taskQueue: STAND_IN_QUEUE, args: [input] });
    return workflowId;
  }

  /** GET /operations/runs until `ready` holds (visibility is eventually consistent). */
  async function runsUntil(ready: (runs: OperationsRun[]) => boolean, query?: string, as: Caller = FINANCE): Promise<OperationsRun[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await api.request('GET', `/operations/runs${query ? `?query=${encodeURIComponent(query)}` : ''}`, { as });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (ready(res.body.runs) || Date.now() > deadline) return res.body.runs;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const auditOf = (workflowId: string) => api.db.auditEntry.findMany({ where: { workflowId }, orderBy: { id: 'asc' } });
  const retryStep = (workflowId: string, body: unknown, as?: Caller) =>
    api.request('POST', `/operations/runs/${encodeURIComponent(workflowId)}/retry-step`, { body, ...(as ? { as } : {}) });

  test('lists a refund waiting for approval with its facts, summary, actions and Web UI link; not a run that needs nobody', async () => {
    const waiting = await startRun(
      'refund',
      [
        { key: FlowStatusKey, value: 'AWAITING_APPROVAL' },
        { key: NeedsAttentionKey, value: true },
        { key: OrderIdKey, value: 'order-ops-1' },
        { key: AmountMinorKey, value: 15_000 },
        { key: CurrencyKey, value: 'EUR' },
        { key: RegionKey, value: 'eu' },
      ],
      'Refund for order-ops-1 · 15000 minor units',
    );
    const quiet = await startRun('refund', [
      { key: FlowStatusKey, value: 'REFUNDING' },
      { key: NeedsAttentionKey, value: false },
      { key: OrderIdKey, value: 'order-ops-1' },
    ]);

    // finance decides refunds: it is offered approve and reject
    const runs = await runsUntil((rs) => rs.some((r) => r.workflowId === waiting.workflowId));
    const run = runs.find((r) => r.workflowId === waiting.workflowId);
    assert.deepEqual(run, {
      workflowId: waiting.workflowId,
      runId: waiting.runId,
      workflowType: 'refund',
      startTime: run?.startTime,
      flowStatus: 'AWAITING_APPROVAL',
      checkoutStep: null,
      orderId: 'order-ops-1',
      amountMinor: 15_000,
      currency: 'EUR',
      region: 'eu',
      needsAttention: true,
      summary: 'Refund for order-ops-1 · 15000 minor units',
      currentDetails: null, // no worker answers the metadata query
      actions: ['approveRefund', 'rejectRefund'],
      webUiUrl: `${TEMPORAL_UI_URL}/namespaces/default/workflows/${encodeURIComponent(waiting.workflowId)}/${waiting.runId}/history`,
    });
    assert.ok(!Number.isNaN(Date.parse(run!.startTime)));
    assert.ok(!runs.some((r) => r.workflowId === quiet.workflowId), 'a run with NeedsAttention = false is not listed by default');

    // support reads the same list, and is offered nothing it may not do
    const asSupport = await runsUntil((rs) => rs.some((r) => r.workflowId === waiting.workflowId), undefined, SUPPORT);
    assert.deepEqual(asSupport.find((r) => r.workflowId === waiting.workflowId)?.actions, []);

    // an operator's own List Filter replaces the default: every run about the order
    const byOrder = await runsUntil((rs) => rs.length === 2, 'OrderId = "order-ops-1"');
    assert.deepEqual(byOrder.map((r) => r.workflowId).sort(), [waiting.workflowId, quiet.workflowId].sort());
    assert.deepEqual(byOrder.find((r) => r.workflowId === quiet.workflowId)?.actions, []);
  });

  test('a finished run drops out of the default list', async () => {
    const run = await startRun('checkout', [
      { key: FlowStatusKey, value: 'RUNNING' },
      { key: NeedsAttentionKey, value: true },
    ]);
    const listed = await runsUntil((rs) => rs.some((r) => r.workflowId === run.workflowId), undefined, OPS);
    assert.deepEqual(listed.find((r) => r.workflowId === run.workflowId)?.actions, ['cancelCheckout', 'retryStep']);
    await api.client.workflow.getHandle(run.workflowId).terminate('test');
    const runs = await runsUntil((rs) => !rs.some((r) => r.workflowId === run.workflowId), undefined, OPS);
    assert.ok(!runs.some((r) => r.workflowId === run.workflowId));
    assert.match(DEFAULT_RUNS_QUERY, /ExecutionStatus = "Running"/);
  });

  test('a List Filter Temporal cannot parse, an empty or an overlong one is a 400 naming `query`', async () => {
    for (const query of ['NeedsAttention = = true', 'NoSuchAttribute = "x"', ' ', 'x'.repeat(1_001)]) {
      const res = await api.request('GET', `/operations/runs?query=${encodeURIComponent(query)}`, { as: OPS });
      assert.equal(res.status, 400, `${query.slice(0, 40)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.field, 'query');
    }
  });

  test('retry-step is an update the run accepts: 200 with its answer, the token subject as who (never the body), in history and the audit log', async () => {
    const workflowId = await startStandIn({ stepWaiting: true });
    const res = await retryStep(workflowId, { by: 'somebody-else', reason: 'stock corrected by hand' }, OPS);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, {
      workflowId,
      action: 'retryStep',
      by: 'ops-otto',
      reason: 'stock corrected by hand',
      state: { retriedBy: 'ops-otto', reason: 'stock corrected by hand', retries: 1 },
    });

    // Temporal records who sent it, and the history summary shows it
    const history = await api.client.workflow.getHandle(workflowId).fetchHistory();
    const accepted = history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
    assert.deepEqual(
      accepted.map((e) => [e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name, e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity]),
      [['retryStep', 'api:ops-otto']],
    );
    const story = await api.request('GET', `/operations/runs/${encodeURIComponent(workflowId)}/history`, { as: OPS });
    assert.equal(story.status, 200, JSON.stringify(story.body));
    assert.ok(story.body.events.some((line: { text: string }) => line.text === 'Update accepted: retryStep by api:ops-otto'), JSON.stringify(story.body.events));

    const [row, ...more] = await auditOf(workflowId);
    assert.equal(more.length, 0);
    assert.equal(row?.subject, 'ops-otto');
    assert.deepEqual(row?.roles, ['operations']);
    assert.equal(row?.action, 'operations.retry-step');
    assert.deepEqual(row?.request, { by: 'ops-otto', reason: 'stock corrected by hand' });
    assert.equal(row?.outcome, 'accepted');
    assert.equal(row?.code, null);
    assert.ok(row?.settledAt);
  });

  test('retry-step the run refuses is a 409 with the run\'s own code, leaves no trace in its history, and is audited as refused', async () => {
    const workflowId = await startStandIn({ stepWaiting: false });
    const res = await retryStep(workflowId, { reason: 'try again' }, OPS);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'no_step_waiting');
    assert.match(res.body.error.message, /no step is waiting/);

    const history = await api.client.workflow.getHandle(workflowId).fetchHistory();
    assert.ok(!history.events?.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes));
    const rows = await auditOf(workflowId);
    assert.deepEqual(
      rows.map((r) => [r.subject, r.action, r.outcome, r.code]),
      [['ops-otto', 'operations.retry-step', 'refused', 'no_step_waiting']],
    );
  });

  test('retry-step refuses a bad body (400 naming the field), an unknown run (404), a type without steps and a finished run (409)', async () => {
    const workflowId = await startStandIn({ stepWaiting: true });
    const missingReason = await retryStep(workflowId, {}, OPS);
    assert.equal(missingReason.status, 400);
    assert.equal(missingReason.body.error.field, 'reason');
    const blank = await retryStep(workflowId, { reason: '  ' }, OPS);
    assert.equal(blank.status, 400);
    assert.equal(blank.body.error.field, 'reason');

    const unknown = await retryStep('no-such-run', { reason: 'x' }, OPS);
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'not_found');

    const mismatch = await startRun('mismatchResolution', [{ key: FlowStatusKey, value: 'OPEN' }]);
    const notSupported = await retryStep(mismatch.workflowId, { reason: 'x' }, OPS);
    assert.equal(notSupported.status, 409, JSON.stringify(notSupported.body));
    assert.equal(notSupported.body.error.code, 'not_supported');
    assert.deepEqual((await auditOf(mismatch.workflowId)).map((r) => [r.outcome, r.code]), [['refused', 'not_supported']]);

    await api.client.workflow.getHandle(workflowId).terminate('test');
    const finished = await retryStep(workflowId, { reason: 'x' }, OPS);
    assert.equal(finished.status, 409, JSON.stringify(finished.body));
    assert.equal(finished.body.error.code, 'already_completed');
    assert.deepEqual((await auditOf(workflowId)).map((r) => [r.outcome, r.code]), [['refused', 'already_completed']]);
  });

  test('retry-step needs a token (401) and the operations role (403); refused callers leave nothing in the audit log', async () => {
    const workflowId = await startStandIn({ stepWaiting: true });
    const anonymous = await retryStep(workflowId, { reason: 'x' });
    assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
    assert.equal(anonymous.body.error.code, 'unauthorized');
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
    for (const as of [SUPPORT, FINANCE, MARKETING, { role: 'customer', subject: 'cust-ada' }] satisfies Caller[]) {
      const res = await retryStep(workflowId, { reason: 'x' }, as);
      assert.equal(res.status, 403, `${as.role}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'forbidden');
    }
    assert.deepEqual(await auditOf(workflowId), []);
    const history = await api.client.workflow.getHandle(workflowId).fetchHistory();
    assert.ok(!history.events?.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes));
  });

  test('GET history tells a real run: its started summary, each step by the summary the workflow gave it, the attributes it set', async () => {
    // One workflow task completed by hand with the commands a worker would send: no worker needed.
    const taskQueue = freshKey('operations-history-queue');
    const workflowId = freshKey('refund');
    await api.client.workflow.start('refund', { workflowId, taskQueue, args: [], staticSummary: 'Refund for order-ops-7 · 2500 minor units' });
    const service = api.client.workflowService;
    // a long poll must carry a deadline; the task is already waiting, so it answers at once
    const task = await api.client.withDeadline(Date.now() + 30_000, () =>
      service.pollWorkflowTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, identity: 'operations-test' }),
    );
    assert.ok(task.taskToken?.length, 'the run has a workflow task');
    const summary = (text: string) => ({ summary: defaultPayloadConverter.toPayload(text) });
    const { CommandType } = proto.temporal.api.enums.v1;
    await service.respondWorkflowTaskCompleted({
      namespace: 'default',
      identity: 'operations-test',
      taskToken: task.taskToken,
      commands: [
        {
          commandType: CommandType.COMMAND_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
          upsertWorkflowSearchAttributesCommandAttributes: {
            searchAttributes: {
              indexedFields: encodeUnifiedSearchAttributes(undefined, [
                { key: FlowStatusKey, value: 'AWAITING_APPROVAL' },
                { key: NeedsAttentionKey, value: true },
              ]),
            },
          },
        },
        {
          commandType: CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
          userMetadata: summary('Read the payment'),
          scheduleActivityTaskCommandAttributes: {
            activityId: '1',
            activityType: { name: 'readRefundablePayment' },
            taskQueue: { name: taskQueue },
            startToCloseTimeout: msToTs('1 minute'),
          },
        },
        {
          commandType: CommandType.COMMAND_TYPE_START_TIMER,
          userMetadata: summary('Escalate if nobody decides within 24 hours'),
          startTimerCommandAttributes: { timerId: '2', startToFireTimeout: msToTs('24 hours') },
        },
      ],
    });
    await api.client.workflow.getHandle(workflowId).signal('approve', { by: 'ops-ada', reason: 'private note' });

    const res = await api.request('GET', `/operations/runs/${encodeURIComponent(workflowId)}/history`, { as: OPS });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const body = res.body as RunHistory;
    assert.equal(body.workflowId, workflowId);
    assert.match(body.runId, /^[0-9a-f-]{36}$/);
    assert.equal(body.truncated, false);
    assert.deepEqual(
      body.events.map((line) => [line.kind, line.text]),
      [
        ['workflowStarted', 'Started refund: Refund for order-ops-7 · 2500 minor units'],
        ['searchAttributesUpserted', 'Now FlowStatus = AWAITING_APPROVAL, NeedsAttention = true'],
        ['activityScheduled', 'Scheduled: Read the payment (readRefundablePayment)'],
        ['timerStarted', 'Waiting: Escalate if nobody decides within 24 hours'],
        ['signalReceived', 'Signal received: approve'],
      ],
    );
    for (const line of body.events) assert.ok(!Number.isNaN(Date.parse(line.time)) && line.eventId > 0, JSON.stringify(line));

    // the same run named by its run id
    const byRunId = await api.request('GET', `/operations/runs/${encodeURIComponent(workflowId)}/history?runId=${body.runId}`, { as: OPS });
    assert.equal(byRunId.status, 200, JSON.stringify(byRunId.body));
    assert.deepEqual(byRunId.body, body);
  });

  test('GET history of an unknown workflow or run is a 404', async () => {
    const unknown = await api.request('GET', '/operations/runs/no-such-run/history', { as: OPS });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'not_found');
    const run = await startRun('refund', []);
    for (const runId of ['00000000-0000-4000-8000-000000000000', 'not-a-run-id']) {
      const res = await api.request('GET', `/operations/runs/${encodeURIComponent(run.workflowId)}/history?runId=${runId}`, { as: OPS });
      assert.equal(res.status, 404, `${runId}: ${JSON.stringify(res.body)}`);
    }
  });

  test('GET /ops, its script, style and sign-in settings need no token; the page may talk to the identity provider and nothing else', async () => {
    const page = await fetch(`${api.baseUrl}/ops`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const policy = page.headers.get('content-security-policy') ?? '';
    assert.match(policy, /default-src 'self'/);
    assert.equal(policy, pageContentSecurityPolicy(api.issuer.url));
    assert.match(policy, new RegExp(`connect-src 'self' ${new URL(api.issuer.url).origin.replace(/[.]/g, '\\.')};`));
    const html = await page.text();
    assert.match(html, /src="\/ops\/ops\.js"/);
    assert.doesNotMatch(html, /(src|href)="https?:\/\//, 'nothing is loaded from elsewhere');
    for (const [path, type] of [['/ops/ops.js', /javascript/], ['/ops/ops.css', /text\/css/]] as const) {
      const res = await fetch(`${api.baseUrl}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', type, path);
    }
    const script = await (await fetch(`${api.baseUrl}/ops/ops.js`)).text();
    assert.doesNotMatch(script, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write/, 'data is rendered as text, never as markup');
  });
});

describe('who may call the operations, reconciliation and coupon routes', () => {
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

  /**
   * The permission table, route by route: who may call it, and a request that proves a caller got
   * past the permission check without changing anything (a body the route refuses as 400, or a
   * read of something that does not exist).
   */
  const TABLE: { method: 'GET' | 'POST'; path: string; allowed: Role[]; body?: unknown }[] = [
    { method: 'GET', path: '/operations/runs?query=%20', allowed: ['support', 'finance', 'operations'] },
    { method: 'GET', path: '/operations/runs/no-such-run/history', allowed: ['operations'] },
    { method: 'POST', path: '/operations/runs/no-such-run/retry-step', allowed: ['operations'], body: {} },
    { method: 'GET', path: '/reconciliation/mismatches?status=SOMETIMES', allowed: ['finance', 'operations'] },
    { method: 'GET', path: '/reconciliation/mismatches/no-such-mismatch', allowed: ['finance', 'operations'] },
    { method: 'GET', path: '/reconciliation/runs/latest', allowed: ['finance', 'operations'] },
    { method: 'POST', path: '/reconciliation/mismatches/no-such-mismatch/resolve', allowed: ['operations'], body: { action: 'shred', note: 'x' } },
    { method: 'POST', path: '/reconciliation/run', allowed: ['operations'], body: { boundaryGraceMs: -1 } },
    { method: 'POST', path: '/coupons/issuances', allowed: ['marketing'], body: {} },
    { method: 'GET', path: '/coupons/issuances/no-such-request', allowed: ['marketing'] },
    { method: 'POST', path: '/campaigns/camp-x/distribute', allowed: ['marketing'], body: {} },
    { method: 'GET', path: '/campaigns/camp-x/distributions/no-such-distribution', allowed: ['marketing'] },
    ...(['pause', 'resume', 'cancel'] as const).map((verb) => ({
      method: 'POST' as const,
      path: `/campaigns/camp-x/distributions/no-such-distribution/${verb}`,
      allowed: ['marketing'] as Role[],
      body: { reason: '' },
    })),
  ];

  test('every route answers an anonymous caller 401, a role without its permission 403, and lets the right roles through', async () => {
    for (const { method, path, allowed, body } of TABLE) {
      const anonymous = await api.request(method, path, { body });
      assert.equal(anonymous.status, 401, `${method} ${path} anonymous: ${JSON.stringify(anonymous.body)}`);
      assert.deepEqual(Object.keys(anonymous.body.error).sort(), ['code', 'message']);
      for (const role of ROLES) {
        const res = await api.request(method, path, { body, as: { role, subject: `${role}-1` } });
        if (allowed.includes(role)) {
          assert.ok([400, 404].includes(res.status), `${method} ${path} as ${role}: ${res.status} ${JSON.stringify(res.body)}`);
        } else {
          assert.equal(res.status, 403, `${method} ${path} as ${role}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.error.code, 'forbidden');
        }
      }
    }
    assert.deepEqual(await api.db.auditEntry.findMany(), [], 'nothing was attempted');
  });

  test('a path parameter with broken percent-encoding is a 400, not a 500', async () => {
    const cases: [string, Caller][] = [
      ['/operations/runs/checkout-%E0%A4%A/history', OPS],
      ['/reconciliation/mismatches/m-%E0%A4%A', OPS],
      ['/coupons/issuances/r-%E0%A4%A', MARKETING],
      ['/campaigns/c-%E0%A4%A/distributions/d-1', MARKETING],
    ];
    for (const [path, as] of cases) {
      const res = await api.request('GET', path, { as });
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_request');
    }
  });

  test('the table above is shared/permissions.ts: each route names exactly the roles that hold its permission', () => {
    const permissionOf: Record<string, Permission> = {
      '/operations/runs?query=%20': 'operations:read',
      '/operations/runs/no-such-run/history': 'operations:history',
      '/operations/runs/no-such-run/retry-step': 'operations:retry-step',
      '/reconciliation/mismatches/no-such-mismatch/resolve': 'mismatches:resolve',
      '/reconciliation/run': 'reconciliation:run',
      '/coupons/issuances': 'coupons:issue',
      '/coupons/issuances/no-such-request': 'coupons:issue',
    };
    for (const { path, allowed } of TABLE) {
      const permission =
        permissionOf[path] ?? (path.startsWith('/reconciliation/') ? 'mismatches:read' : path.startsWith('/campaigns/') ? 'campaigns:distribute' : undefined);
      assert.ok(permission, path);
      assert.deepEqual(ROLES.filter((role) => ROLE_PERMISSIONS[role].includes(permission)), allowed, path);
    }
  });

});

describe('the operations API without Temporal', () => {
  test('an unreachable Temporal is a 503 naming it, for the list, retry-step and a history', async () => {
    const api = await startApiHarness({ temporalAddress: await unreachableTemporalAddress() });
    try {
      const list = await api.request('GET', '/operations/runs', { as: OPS });
      assert.equal(list.status, 503, JSON.stringify(list.body));
      assert.equal(list.body.error.code, 'temporal_unavailable');
      const retry = await api.request('POST', '/operations/runs/checkout-x/retry-step', { body: { reason: 'x' }, as: OPS });
      assert.equal(retry.status, 503, JSON.stringify(retry.body));
      assert.equal(retry.body.error.code, 'temporal_unavailable');
      const history = await api.request('GET', '/operations/runs/checkout-x/history', { as: OPS });
      assert.equal(history.status, 503, JSON.stringify(history.body));
      assert.equal(history.body.error.code, 'temporal_unavailable');
    } finally {
      await api.close();
    }
  });
});
