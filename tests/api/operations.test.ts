// The operations API against a real Temporal dev server, with no worker: runs are started
// straight with the search attributes a workflow would have upserted, so they wait in their
// task queue exactly as the visibility store describes them. Which actions a run accepts is a
// pure rule, tested on its own first.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter, type SearchAttributePair } from '@temporalio/common';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import proto from '@temporalio/proto';
import { decodeSummaries, historyLines, type HistoryEvent } from '../../api/history-summary.ts';
import { ACTION_PERMISSIONS, actionsFor } from '../../api/operator-actions.ts';
import { DEFAULT_RUNS_QUERY } from '../../api/routes/operations.ts';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import type { OperationsRun, RunHistory } from '../../shared/operations.ts';
import { permissionsOf, ROLES, type Role } from '../../shared/permissions.ts';
import {
  AmountMinorKey,
  CurrencyKey,
  FlowStatusKey,
  NeedsAttentionKey,
  OrderIdKey,
  RegionKey,
} from '../../shared/search-attributes.ts';
import { readHistoryFile } from '../support/histories.ts';
import { freshKey, startApiHarness, TEMPORAL_UI_URL, unreachableTemporalAddress, type ApiHarness } from './harness.ts';

/** No worker polls it: runs started here stay RUNNING. */
const IDLE_QUEUE = 'operations-test-no-worker';

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
    const story = historyLines(events, await decodeSummaries(events, loadDataConverter()));
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
    const story = historyLines(events, await decodeSummaries(events, loadDataConverter()), 3);
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
      new Map(),
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
});

describe('the operations API', () => {
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

  /** GET /operations/runs until `ready` holds (visibility is eventually consistent). */
  async function runsUntil(ready: (runs: OperationsRun[]) => boolean, query?: string): Promise<OperationsRun[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await api.request('GET', `/operations/runs${query ? `?query=${encodeURIComponent(query)}` : ''}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (ready(res.body.runs) || Date.now() > deadline) return res.body.runs;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

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
    await runsUntil((rs) => rs.some((r) => r.workflowId === run.workflowId));
    await api.client.workflow.getHandle(run.workflowId).terminate('test');
    const runs = await runsUntil((rs) => !rs.some((r) => r.workflowId === run.workflowId));
    assert.ok(!runs.some((r) => r.workflowId === run.workflowId));
    assert.match(DEFAULT_RUNS_QUERY, /ExecutionStatus = "Running"/);
  });

  test('a List Filter Temporal cannot parse, an empty or an overlong one is a 400 naming `query`', async () => {
    for (const query of ['NeedsAttention = = true', 'NoSuchAttribute = "x"', ' ', 'x'.repeat(1_001)]) {
      const res = await api.request('GET', `/operations/runs?query=${encodeURIComponent(query)}`);
      assert.equal(res.status, 400, `${query.slice(0, 40)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'invalid_request');
      assert.equal(res.body.error.field, 'query');
    }
  });

  test('retry-step signals a running checkout and names who asked', async () => {
    const run = await startRun('checkout', [
      { key: FlowStatusKey, value: 'RUNNING' },
      { key: NeedsAttentionKey, value: true },
    ]);
    const res = await api.request('POST', `/operations/runs/${encodeURIComponent(run.workflowId)}/retry-step`, {
      body: { by: 'ops-ada', reason: 'stock corrected by hand' },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(res.body, { workflowId: run.workflowId, action: 'retryStep', by: 'ops-ada', reason: 'stock corrected by hand' });

    const history = await api.client.workflow.getHandle(run.workflowId).fetchHistory();
    const signals = history.events?.filter((e) => e.workflowExecutionSignaledEventAttributes) ?? [];
    assert.deepEqual(
      signals.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName),
      ['retryStep'],
    );
  });

  test('retry-step refuses a bad body (400 naming the field), an unknown run (404), a finished run, a type without steps and a run with no step in a slow retry (409)', async () => {
    const run = await startRun('checkout', [{ key: NeedsAttentionKey, value: true }]);
    const path = `/operations/runs/${encodeURIComponent(run.workflowId)}/retry-step`;

    const missingReason = await api.request('POST', path, { body: { by: 'ops-ada' } });
    assert.equal(missingReason.status, 400);
    assert.equal(missingReason.body.error.field, 'reason');
    const blankBy = await api.request('POST', path, { body: { by: '  ', reason: 'x' } });
    assert.equal(blankBy.status, 400);
    assert.equal(blankBy.body.error.field, 'by');

    const unknown = await api.request('POST', '/operations/runs/no-such-run/retry-step', { body: { by: 'ops-ada', reason: 'x' } });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'not_found');

    const mismatch = await startRun('mismatchResolution', [{ key: FlowStatusKey, value: 'OPEN' }]);
    const notSupported = await api.request('POST', `/operations/runs/${encodeURIComponent(mismatch.workflowId)}/retry-step`, {
      body: { by: 'ops-ada', reason: 'x' },
    });
    assert.equal(notSupported.status, 409, JSON.stringify(notSupported.body));
    assert.equal(notSupported.body.error.code, 'not_supported');

    for (const attributes of [
      [{ key: NeedsAttentionKey, value: false }],
      [{ key: FlowStatusKey, value: 'AWAITING_APPROVAL' }, { key: NeedsAttentionKey, value: true }],
    ] satisfies SearchAttributePair[][]) {
      const idle = await startRun('refund', attributes);
      const notWaiting = await api.request('POST', `/operations/runs/${encodeURIComponent(idle.workflowId)}/retry-step`, {
        body: { by: 'ops-ada', reason: 'x' },
      });
      assert.equal(notWaiting.status, 409, JSON.stringify(notWaiting.body));
      assert.equal(notWaiting.body.error.code, 'not_waiting_for_action');
    }

    await api.client.workflow.getHandle(run.workflowId).terminate('test');
    const finished = await api.request('POST', path, { body: { by: 'ops-ada', reason: 'x' } });
    assert.equal(finished.status, 409, JSON.stringify(finished.body));
    assert.equal(finished.body.error.code, 'already_completed');
    assert.equal(finished.body.error.executionStatus, 'TERMINATED');
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

    const res = await api.request('GET', `/operations/runs/${encodeURIComponent(workflowId)}/history`);
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
    const byRunId = await api.request('GET', `/operations/runs/${encodeURIComponent(workflowId)}/history?runId=${body.runId}`);
    assert.equal(byRunId.status, 200, JSON.stringify(byRunId.body));
    assert.deepEqual(byRunId.body, body);
  });

  test('GET history of an unknown workflow or run is a 404', async () => {
    const unknown = await api.request('GET', '/operations/runs/no-such-run/history');
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error.code, 'not_found');
    const run = await startRun('refund', []);
    for (const runId of ['00000000-0000-4000-8000-000000000000', 'not-a-run-id']) {
      const res = await api.request('GET', `/operations/runs/${encodeURIComponent(run.workflowId)}/history?runId=${runId}`);
      assert.equal(res.status, 404, `${runId}: ${JSON.stringify(res.body)}`);
    }
  });

  test('GET /ops serves the page and its script, self-contained', async () => {
    const page = await fetch(`${api.baseUrl}/ops`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await page.text();
    assert.match(html, /src="\/ops\/ops\.js"/);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing is loaded from elsewhere');
    for (const [path, type] of [['/ops/ops.js', /javascript/], ['/ops/ops.css', /text\/css/]] as const) {
      const res = await fetch(`${api.baseUrl}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', type, path);
    }
    const script = await (await fetch(`${api.baseUrl}/ops/ops.js`)).text();
    assert.doesNotMatch(script, /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write/, 'data is rendered as text, never as markup');
  });
});

describe('the operations API without Temporal', () => {
  test('an unreachable Temporal is a 503 naming it, for the list, retry-step and a history', async () => {
    const api = await startApiHarness({ temporalAddress: await unreachableTemporalAddress() });
    try {
      const list = await api.request('GET', '/operations/runs');
      assert.equal(list.status, 503, JSON.stringify(list.body));
      assert.equal(list.body.error.code, 'temporal_unavailable');
      const retry = await api.request('POST', '/operations/runs/checkout-x/retry-step', { body: { by: 'ops-ada', reason: 'x' } });
      assert.equal(retry.status, 503, JSON.stringify(retry.body));
      assert.equal(retry.body.error.code, 'temporal_unavailable');
      const history = await api.request('GET', '/operations/runs/checkout-x/history');
      assert.equal(history.status, 503, JSON.stringify(history.body));
      assert.equal(history.body.error.code, 'temporal_unavailable');
    } finally {
      await api.close();
    }
  });
});
