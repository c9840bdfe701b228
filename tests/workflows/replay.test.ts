// Replays recorded checkout histories against the current workflow code: a change that would
// break running checkouts (reordered, added or removed steps without versioning) fails here.
// Two sets: `<id>-encrypted.json`, recorded under the test key ring (tests/support/payload-keys.ts),
// and the plain `<id>.json` recorded before payloads were encrypted, kept as they are: they stand
// for runs started before the rollout, whose payloads the codec passes through. Re-record the
// encrypted set after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/workflows/replay.test.ts
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { ApplicationFailure } from '@temporalio/common';
import { cancelCheckoutSignal, checkoutWorkflowId, type CheckoutInput } from '../../shared/checkout.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import type { checkout } from '../../workflows/checkout.ts';
import {
  checkoutInput, declined, gate, lateApproval, mockActivities, outOfStock, runCheckout, startTestServer, until,
  WORKFLOWS_WITH_FAKE_REFUND_PATH, type MockActivities,
} from '../support/checkout-harness.ts';
import { readHistoryFile, writeHistoryFile } from '../support/histories.ts';
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

async function readHistories(): Promise<{ workflowId: string; history: Awaited<ReturnType<typeof readHistoryFile>> }[]> {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      workflowId: file.replace(/\.json$/, ''),
      history: await readHistoryFile(HISTORIES_DIR + file),
    })),
  );
}

describe('checkout replay', () => {
  test('records histories of finished checkouts', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
    const env = await startTestServer();
    const authorizing = gate();
    type During = (handle: WorkflowHandle<typeof checkout>) => Promise<void>;
    const scenarios: [string, MockActivities, During?, Partial<CheckoutInput>?][] = [
      ['paid', mockActivities()],
      ['declined', mockActivities({ authorizePayment: async () => { throw declined(); } })],
      ['out-of-stock', mockActivities({ reserveStock: async () => { throw outOfStock(); } })],
      // undecided at the deadline, void refused, approved late: the order completes after all
      ['paid-late', lateApproval(mockActivities()), undefined, { timing: { paymentDeadlineMs: 60_000 } }],
      // approved late but the stock is gone: a Refund workflow (child) gives the capture back
      ['refunded', lateApproval(mockActivities({ commitStock: async () => { throw stockReleased(); } })), undefined,
        { timing: { paymentDeadlineMs: 60_000 } }],
    ];
    const cancelled = mockActivities({
      authorizePayment: async ({ orderId }) => {
        await authorizing.opened;
        return { paymentId: `pay-${orderId}`, status: 'AUTHORIZATION_PENDING' };
      },
    });
    scenarios.push(['cancelled', cancelled, async (handle) => {
      await until(() => cancelled.calls.some((c) => c.name === 'authorizePayment'));
      await handle.signal(cancelCheckoutSignal, { reason: 'customer changed their mind' });
      await until(() => cancelled.calls.some((c) => c.name === 'cancelOrder'));
      authorizing.open();
    }]);
    // Recorded with a stand-in Refund workflow (a checkout's history holds only the child's result).
    const recordingBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const [name, activities, during, extra] of scenarios) {
        // the test server's client and runCheckout's worker encrypt with the test ring
        const checkoutKey = `replay-${name}-encrypted`;
        const { handle } = await runCheckout(env, recordingBundle, activities, checkoutInput(checkoutKey, extra), during);
        await writeHistoryFile(`${HISTORIES_DIR}${checkoutWorkflowId(checkoutKey)}.json`, await handle.fetchHistory());
      }
    } finally {
      await env.teardown();
    }
  });

  test('every recorded history replays against the current workflow code, encrypted or from before encryption', async () => {
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
