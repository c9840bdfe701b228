// Rotating the payload key while runs are in flight, on a real Temporal dev server: refunds start
// under key A and wait for a decision; the worker stops; worker and client come back with B first
// (encrypts) and A kept (decrypts); the refunds finish. Their histories show where the key
// changed, replay under the rotated ring, and cannot be read once A is dropped.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { decodeArrayFromPayloads, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type LogEntry, type WorkflowBundle } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { UnknownPayloadKeyError, type PayloadKeyRing } from '../../lib/payload-codec.ts';
import { startDevServer, type DevServer } from '../../lib/temporal-dev-server.ts';
import { approveRefundUpdate, rejectRefundSignal, refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { DEFAULT_REFUND_POLICY, type refund } from '../../workflows/refund.ts';
import { historyText, keyIdOf, ONLY_B_KEY_RING, payloadsIn, ROTATED_KEY_RING, TEST_KEY_RING, testDataConverter } from '../support/payload-keys.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen } from '../support/refund-harness.ts';

const LARGE = DEFAULT_REFUND_POLICY.approvalThresholdMinor + 1;
const TASK_QUEUE = `key-rotation-${process.pid}`;

let server: DevServer;
let connection: Connection;
let workerConnection: NativeConnection;
let workflowBundle: WorkflowBundle;
/** What the workers logged (core's own lines forwarded here too): kept, to read what a worker says about a missing key. */
const workerLog: LogEntry[] = [];

before(async () => {
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => workerLog.push(entry)),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  [server, workflowBundle] = await Promise.all([
    startDevServer(),
    bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') }),
  ]);
  connection = await Connection.connect({ address: server.address });
  workerConnection = await NativeConnection.connect({ address: server.address });
});
after(async () => {
  await workerConnection?.close();
  await connection?.close();
  await server?.stop();
});

/** A client with the ring, or, without one, the cluster's own view: payloads as stored. */
const clientWith = (ring?: PayloadKeyRing) =>
  new Client({ connection, namespace: 'default', ...(ring ? { dataConverter: testDataConverter(ring) } : {}) });

async function startWorker(ring: PayloadKeyRing, activities: object): Promise<{ stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection: workerConnection,
    namespace: 'default',
    taskQueue: TASK_QUEUE,
    dataConverter: testDataConverter(ring),
    workflowBundle,
    activities,
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

test('runs started under key A finish after the rotation to B; new payloads carry B, the earlier ones A; dropping A makes them unreadable', async () => {
  const world = refundWorld({ capturedMinor: 30_000, order: { ...refundWorld().order, totalMinor: 30_000 } });
  const inputs: RefundInput[] = [
    refundInput('rotation-approved', { amount: LARGE, reason: 'parcel lost by the carrier' }),
    refundInput('rotation-rejected', { amount: LARGE, reason: 'changed my mind after a year' }),
  ];

  // Before: A encrypts. Both refunds read the payment and the order, then wait for a decision.
  const before = clientWith(TEST_KEY_RING);
  const first = await startWorker(TEST_KEY_RING, mockRefundActivities(world));
  const handles: WorkflowHandle<typeof refund>[] = [];
  for (const input of inputs) {
    handles.push(await before.workflow.start<typeof refund>('refund', { args: [input], taskQueue: TASK_QUEUE, workflowId: refundWorkflowId(input.requestId) }));
  }
  for (const handle of handles) await stateWhen(handle, (s) => s.status === 'AWAITING_APPROVAL');
  await first.stop();
  const raw = clientWith();
  /** The last event each run had written under A: nothing happens while they wait for a person. */
  const lastUnderA = await Promise.all(handles.map(async (h) => (await raw.workflow.getHandle(h.workflowId).fetchHistory()).events!.length));

  // After: B encrypts, A still decrypts. The decisions come through the rotated client.
  const rotated = clientWith(ROTATED_KEY_RING);
  const second = await startWorker(ROTATED_KEY_RING, mockRefundActivities(world));
  try {
    const [approved, rejected] = handles.map((h) => rotated.workflow.getHandle<typeof refund>(h.workflowId));
    const decided = await approved!.executeUpdate(approveRefundUpdate, { args: [{ by: 'fin-fay', reason: 'carrier confirmed the loss' }] });
    assert.equal(decided.approval?.decision, 'approved');
    await rejected!.signal(rejectRefundSignal, { by: 'fin-fay', reason: 'outside the return window' });

    const approvedState = await approved!.result();
    assert.equal(approvedState.status, 'SUCCEEDED', JSON.stringify(approvedState));
    assert.equal(approvedState.amountMinor, LARGE);
    assert.equal(approvedState.reason, 'parcel lost by the carrier', 'the input written under A reads back whole');
    const rejectedState = await rejected!.result();
    assert.equal(rejectedState.status, 'REJECTED', JSON.stringify(rejectedState));
    assert.equal(rejectedState.approval?.reason, 'outside the return window');
    // the provider saw exactly the approved refund, once
    assert.deepEqual([...world.refunds.values()].map((r) => [r.amountMinor, r.status]), [[LARGE, 'SUCCEEDED']]);
  } finally {
    await second.stop();
  }

  const histories = await Promise.all(handles.map(async (h) => ({ workflowId: h.workflowId, history: await raw.workflow.getHandle(h.workflowId).fetchHistory() })));
  for (const [i, { workflowId, history }] of histories.entries()) {
    const payloads = payloadsIn(history);
    const early = payloads.filter((p) => p.eventId <= lastUnderA[i]!);
    const late = payloads.filter((p) => p.eventId > lastUnderA[i]!);
    assert.ok(early.some((p) => p.eventId === 1), `${workflowId}: the start input is among the early payloads`);
    assert.ok(late.length > 0, `${workflowId}: payloads were written after the rotation`);
    for (const { path, payload } of early) assert.equal(keyIdOf(payload), 'test-a', `${workflowId} ${path}`);
    for (const { path, payload } of late) assert.equal(keyIdOf(payload), 'test-b', `${workflowId} ${path}`);
    // the operator's words and the customer's reason are in there, but not in plaintext
    const text = historyText(history);
    for (const secret of [inputs[i]!.reason, 'carrier confirmed the loss', 'outside the return window', 'fin-fay']) {
      assert.ok(!text.includes(secret), `${workflowId}: "${secret}" in plaintext`);
    }
  }

  // Both histories replay under the rotated ring: a worker that still holds A can take any of these runs over.
  for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter(ROTATED_KEY_RING) }, histories)) {
    assert.equal(error, undefined, `${workflowId} does not replay under [B, A]: ${error?.message}`);
  }

  // Once A is dropped, what it encrypted is gone for good, and the error says which key is missing.
  const [started] = histories[0]!.history.events!;
  const onlyB = loadDataConverter(testDataConverter(ONLY_B_KEY_RING));
  await assert.rejects(
    decodeArrayFromPayloads(onlyB, started!.workflowExecutionStartedEventAttributes!.input!.payloads),
    (err: unknown) => err instanceof UnknownPayloadKeyError && err.keyId === 'test-a' && /"test-a"/.test(err.message),
  );
  // (the replayer's own report of why is a failure encrypted under B: only the run's task failure says "Encoded failure")
  await assert.rejects(
    Worker.runReplayHistory({ workflowBundle, dataConverter: testDataConverter(ONLY_B_KEY_RING) }, histories[0]!.history, histories[0]!.workflowId),
    /Replay failed/,
    'a replayer without key A cannot rebuild the run',
  );
  // the worker's log is where an operator learns which key to put back
  assert.ok(
    workerLog.some((entry) => entry.meta?.error instanceof UnknownPayloadKeyError && (entry.meta.error as UnknownPayloadKeyError).keyId === 'test-a'),
    'the worker logs the missing key by its id',
  );
});
