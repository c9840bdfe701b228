// Replays recorded Refund histories against the current workflow code: a change that would break
// running refunds (a step added, removed or reordered without versioning) fails here.
// Re-record after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/workflows/refund-replay.test.ts
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { abandonRefundSignal, approveRefundSignal, refundManuallySignal, retryRefundSignal, type RefundInput } from '../../shared/refunds.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { DEFAULT_REFUND_POLICY, type refund } from '../../workflows/refund.ts';
import { startTestServer } from '../support/checkout-harness.ts';
import { readHistoryFile, writeHistoryFile } from '../support/histories.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen, withRefundWorker, type RefundWorld } from '../support/refund-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/refund-histories/', import.meta.url));
const quiet = new DefaultLogger('ERROR');

let workflowBundle: WorkflowBundle;
before(async () => {
  Runtime.install({ logger: quiet });
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
});

type Scenario = [name: string, world: () => RefundWorld, input: Partial<RefundInput>, during?: (h: WorkflowHandle<typeof refund>) => Promise<void>];

const LARGE = DEFAULT_REFUND_POLICY.approvalThresholdMinor + 1;
const large = () => refundWorld({ capturedMinor: 20_000, order: { ...refundWorld().order, totalMinor: 20_000 } });
const providerRejects = () => refundWorld({ providerSucceeds: (_id, attempt) => attempt > 1 });
const stuck = (h: WorkflowHandle<typeof refund>) => stateWhen(h, (s) => s.status === 'NEEDS_OPERATOR');

const SCENARIOS: Scenario[] = [
  ['full', refundWorld, { amount: 'full', restock: [{ sku: 'MUG', quantity: 2 }] }],
  ['approved', large, { amount: LARGE }, async (h) => {
    await stateWhen(h, (s) => s.status === 'AWAITING_APPROVAL');
    await h.signal(approveRefundSignal, { by: 'ops', reason: 'checked' });
  }],
  ['expired', large, { amount: LARGE }],
  ['retried', providerRejects, {}, async (h) => {
    await stuck(h);
    await h.signal(retryRefundSignal, { by: 'ops', reason: 'again' });
  }],
  ['manual', providerRejects, {}, async (h) => {
    await stuck(h);
    await h.signal(refundManuallySignal, { by: 'ops', reason: 'bank transfer', reference: 'SEPA-1' });
  }],
  ['abandoned', providerRejects, {}, async (h) => {
    await stuck(h);
    await h.signal(abandonRefundSignal, { by: 'ops', reason: 'store credit' });
  }],
];

describe('refund replay', () => {
  test('records histories of finished refunds', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
    const env = await startTestServer();
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const [name, world, input, during] of SCENARIOS) {
        await withRefundWorker(env, workflowBundle, mockRefundActivities(world()), async (start) => {
          const handle = await start(refundInput(`replay-${name}`, input));
          await during?.(handle);
          await handle.result();
          await writeHistoryFile(`${HISTORIES_DIR}${handle.workflowId}.json`, await handle.fetchHistory());
        });
      }
    } finally {
      await env.teardown();
    }
  });

  test('every recorded refund history replays against the current workflow code', async () => {
    const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
    assert.equal(files.length, SCENARIOS.length, `expected one recorded history per scenario in ${HISTORIES_DIR}`);
    const histories = await Promise.all(
      files.map(async (file) => ({ workflowId: file.replace(/\.json$/, ''), history: await readHistoryFile(HISTORIES_DIR + file) })),
    );
    const replayed: string[] = [];
    // the test ring reads histories recorded under it; the older, unencrypted ones pass through
    for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter() }, histories)) {
      assert.equal(error, undefined, `${workflowId} no longer replays: ${error?.message}`);
      replayed.push(workflowId);
    }
    assert.deepEqual(replayed, histories.map((h) => h.workflowId));
  });
});
