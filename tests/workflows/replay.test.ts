// Replays recorded checkout histories against the current workflow code: a change that would
// break running checkouts (reordered, added or removed steps without versioning) fails here.
// Three sets: `<id>-encrypted.json`, recorded under the test key ring (tests/support/payload-keys.ts)
// as the code runs now, with a marker for every `patched()` it meets; `<id>-before-patches-encrypted.json`,
// the same scenario recorded as a run that started before those patches (no markers, the old
// branches: tests/support/histories.ts); and the plain `<id>.json` recorded before payloads were
// encrypted and before the patches, kept as they are: runs started before the rollout, whose
// payloads the codec passes through. Re-record the first two after an intended, versioned change
// (tests/workflows/patch-coverage.test.ts names the command that re-records every domain) with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/workflows/replay.test.ts
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { ApplicationFailure } from '@temporalio/common';
import { cancelCheckoutSignal, checkoutWorkflowId, orderIdFor, refundRequestIdFor, type CheckoutInput } from '../../shared/checkout.ts';
import { refundWorkflowId, type RefundInput } from '../../shared/refunds.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import type { checkout } from '../../workflows/checkout.ts';
import {
  checkoutInput, declined, gate, lateApproval, mockActivities, outOfStock, refundState, startTestServer, until,
  WORKFLOWS_WITH_FAKE_REFUND_PATH, type MockActivities,
} from '../support/checkout-harness.ts';
import { readHistoryDir, recordedName, recordEachWay, withRecordingWorker, writeHistoryFile } from '../support/histories.ts';
import { keyIdOf, ONLY_B_KEY_RING, testDataConverter } from '../support/payload-keys.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const REORDERED_WORKFLOW = fileURLToPath(new URL('../fixtures/workflows/reordered-checkout.ts', import.meta.url));
const quiet = new DefaultLogger('ERROR');
const ENCRYPTED = /-encrypted$/;
const stockReleased = () => ApplicationFailure.nonRetryable('reservation was released', BusinessFailure.AlreadyCompensated, { code: 'reservation_released' });

let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: quiet });
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
});

const readHistories = () => readHistoryDir(HISTORIES_DIR);

type During = (handle: WorkflowHandle<typeof checkout>) => Promise<void>;
type BeforeStart = (client: Client, taskQueue: string) => Promise<void>;

interface Scenario {
  name: string;
  /** Fresh mocks for each recording (a scenario is recorded once per patch mode). */
  prepare(checkoutKey: string): { activities: MockActivities; beforeStart?: BeforeStart; during?: During };
  input?: Partial<CheckoutInput>;
}

/** The provider keeps the capture pending for its first `pendingChecks` checks, then settles it. */
function slowCapture(pendingChecks: number): MockActivities {
  const acts = mockActivities();
  const checks = acts.syncPayment;
  let captureChecks = 0;
  acts.syncPayment = async (input) => {
    if (acts.provider.status === 'CAPTURE_PENDING' && ++captureChecks <= pendingChecks) {
      acts.calls.push({ name: 'syncPayment', input: { ...input } });
      return { paymentId: `pay-${input.orderId}`, status: 'CAPTURE_PENDING', amountMinor: acts.provider.amountMinor,
        capturedMinor: 0, refundedMinor: 0, declineCode: null };
    }
    return checks(input);
  };
  return acts;
}

/**
 * The checkout's own refund is already there when it goes to start it (here: run just before, by
 * a stand-in): its start is refused, so the checkout looks at that refund until it has ended. The
 * look answers RUNNING seven times (the checks grow from 1 s to their ceiling), then SUCCEEDED.
 */
function refundFoundRunning(checkoutKey: string): ReturnType<Scenario['prepare']> {
  const earlier: RefundInput = {
    requestId: refundRequestIdFor(checkoutKey), orderId: orderIdFor(checkoutKey), amount: 'full',
    reason: 'payment went through after the checkout gave up on it', restock: [], requestedBy: 'checkout',
  };
  let looks = 0;
  const activities: MockActivities = lateApproval(mockActivities({
    commitStock: async () => { throw stockReleased(); },
    // only the earlier refund runs the stand-in; it moves nothing of the mock provider's money
    fakeRefund: async (input) => refundState(input, 0, 'SUCCEEDED'),
    readRefundWorkflow: async () => {
      if (++looks <= 7) return { execution: 'RUNNING', state: null };
      const { provider } = activities;
      provider.refundedMinor = provider.capturedMinor;
      provider.status = 'REFUNDED';
      return { execution: 'COMPLETED', state: refundState(earlier, provider.capturedMinor, 'SUCCEEDED') };
    },
  }));
  const beforeStart: BeforeStart = async (client, taskQueue) => {
    await client.workflow.execute('refund', { args: [earlier], taskQueue, workflowId: refundWorkflowId(earlier.requestId) });
  };
  return { activities, beforeStart };
}

const SCENARIOS: Scenario[] = [
  { name: 'paid', prepare: () => ({ activities: mockActivities() }) },
  { name: 'declined', prepare: () => ({ activities: mockActivities({ authorizePayment: async () => { throw declined(); } }) }) },
  { name: 'out-of-stock', prepare: () => ({ activities: mockActivities({ reserveStock: async () => { throw outOfStock(); } }) }) },
  // undecided at the deadline, void refused, approved late: the order completes after all
  { name: 'paid-late', prepare: () => ({ activities: lateApproval(mockActivities()) }), input: { timing: { paymentDeadlineMs: 60_000 } } },
  // approved late but the stock is gone: a Refund workflow (child) gives the capture back
  {
    name: 'refunded',
    prepare: () => ({ activities: lateApproval(mockActivities({ commitStock: async () => { throw stockReleased(); } })) }),
    input: { timing: { paymentDeadlineMs: 60_000 } },
  },
  // the capture stays pending past the payment deadline: the wait stalls (stalled-provider-wait), then settles
  { name: 'stalled-capture', prepare: () => ({ activities: slowCapture(7) }), input: { timing: { paymentDeadlineMs: 60_000 } } },
  // a fulfilment step refused once waits on its slow timer, shown to operators (operator-visibility)
  {
    name: 'refused-commit',
    prepare: () => {
      let commits = 0;
      return {
        activities: mockActivities({
          commitStock: async () => {
            if (++commits === 1) throw ApplicationFailure.nonRetryable('reservation is busy', 'IllegalTransition');
          },
        }),
      };
    },
  },
  // approved late, the stock is gone, and the checkout's refund is already running (started by
  // an earlier attempt): the checkout looks at that refund until it has ended
  { name: 'refund-found-running', prepare: refundFoundRunning, input: { timing: { paymentDeadlineMs: 60_000 } } },
  // Last: its authorization answers after the run has ended, and the time-skipping server then
  // stops skipping time for good (the scenarios after it would wait out their timers for real).
  {
    name: 'cancelled',
    prepare: () => {
      const authorizing = gate();
      const activities = mockActivities({
        authorizePayment: async ({ orderId }) => {
          await authorizing.opened;
          return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
        },
      });
      const during: During = async (handle) => {
        await until(() => activities.calls.some((c) => c.name === 'authorizePayment'));
        await handle.signal(cancelCheckoutSignal, { reason: 'customer changed their mind' });
        await until(() => activities.calls.some((c) => c.name === 'cancelOrder'));
        authorizing.open();
      };
      return { activities, during };
    },
  },
];

describe('checkout replay', () => {
  test('records histories of finished checkouts, as they run now and as runs from before the patches', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
    const env = await startTestServer();
    // Recorded with a stand-in Refund workflow (a checkout's history holds only the child's result).
    const recordingBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const scenario of SCENARIOS) {
        await recordEachWay(async (patches) => {
          // the test server's client and the recording worker encrypt with the test ring
          const checkoutKey = recordedName(`replay-${scenario.name}`, patches);
          const { activities, beforeStart, during } = scenario.prepare(checkoutKey);
          const workflowId = checkoutWorkflowId(checkoutKey);
          const { result: handle, met } = await withRecordingWorker(env, { workflowBundle: recordingBundle, activities, patches }, async (taskQueue) => {
            await beforeStart?.(env.client, taskQueue);
            const handle = await env.client.workflow.start<typeof checkout>('checkout', { args: [checkoutInput(checkoutKey, scenario.input)], taskQueue, workflowId });
            await during?.(handle);
            await handle.result();
            return handle;
          });
          await writeHistoryFile(`${HISTORIES_DIR}${workflowId}.json`, await handle.fetchHistory());
          return met;
        });
      }
    } finally {
      await env.teardown();
    }
  });

  test('every recorded history replays against the current workflow code: encrypted, from before the patches, from before encryption', async () => {
    const histories = await readHistories();
    const startInputKey = (h: (typeof histories)[number]) =>
      keyIdOf(h.history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    const encrypted = histories.filter((h) => ENCRYPTED.test(h.workflowId));
    const plain = histories.filter((h) => !ENCRYPTED.test(h.workflowId));
    assert.ok(encrypted.length >= 6 && plain.length >= 6, `expected both sets of recorded histories in ${HISTORIES_DIR}`);
    assert.deepEqual(new Set(encrypted.map(startInputKey)), new Set(['test-a']), 'the encrypted set is encrypted');
    assert.deepEqual(new Set(plain.map(startInputKey)), new Set([null]), 'the older set is not');
    const replayed: string[] = [];
    for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter() }, histories)) {
      assert.equal(error, undefined, `${workflowId} no longer replays: ${error?.message}`);
      replayed.push(workflowId);
    }
    assert.deepEqual(replayed, histories.map((h) => h.workflowId));
  });

  test('an encrypted history does not replay without its key', async () => {
    const [encrypted] = (await readHistories()).filter((h) => ENCRYPTED.test(h.workflowId));
    assert.ok(encrypted);
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle, dataConverter: testDataConverter(ONLY_B_KEY_RING) }, encrypted.history, encrypted.workflowId),
      /Replay failed/,
    );
  });

  test('replay fails with a determinism violation when two steps are swapped', async () => {
    const [first] = await readHistories();
    assert.ok(first);
    const reordered = await bundleWorkflowCode({ workflowsPath: REORDERED_WORKFLOW, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: reordered, dataConverter: testDataConverter() }, first.history, first.workflowId),
      (err: unknown) => err instanceof DeterminismViolationError && /reserveStock|createOrder/.test(err.message),
    );
  });
});
