// Replays recorded checkout histories against the current workflow code: a change that would
// break running checkouts (reordered, added or removed steps without versioning) fails here.
// Re-record after an intended, versioned change with:
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

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
const REORDERED_WORKFLOW = fileURLToPath(new URL('../fixtures/workflows/reordered-checkout.ts', import.meta.url));
const quiet = new DefaultLogger('ERROR');
const stockReleased = () => ApplicationFailure.nonRetryable('reservation was released', BusinessFailure.AlreadyCompensated, { code: 'reservation_released' });

let workflowBundle: WorkflowBundle;

before(async () => {
  Runtime.install({ logger: quiet });
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, logger: quiet });
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
    const recordingBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_WITH_FAKE_REFUND_PATH, logger: quiet });
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const [name, activities, during, extra] of scenarios) {
        const { handle } = await runCheckout(env, recordingBundle, activities, checkoutInput(`replay-${name}`, extra), during);
        const history = await handle.fetchHistory();
        const file = `${HISTORIES_DIR}${checkoutWorkflowId(`replay-${name}`)}.json`;
        await writeHistoryFile(file, history);
      }
    } finally {
      await env.teardown();
    }
  });

  test('every recorded history replays against the current workflow code', async () => {
    const histories = await readHistories();
    assert.ok(histories.length >= 6, `expected recorded histories in ${HISTORIES_DIR}`);
    const replayed: string[] = [];
    for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle }, histories)) {
      assert.equal(error, undefined, `${workflowId} no longer replays: ${error?.message}`);
      replayed.push(workflowId);
    }
    assert.deepEqual(replayed, histories.map((h) => h.workflowId));
  });

  test('replay fails with a determinism violation when two steps are swapped', async () => {
    const [first] = await readHistories();
    assert.ok(first);
    const reordered = await bundleWorkflowCode({ workflowsPath: REORDERED_WORKFLOW, logger: quiet });
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: reordered }, first.history, first.workflowId),
      (err: unknown) => err instanceof DeterminismViolationError && /reserveStock|createOrder/.test(err.message),
    );
  });
});
