// Replays recorded Refund histories against the current workflow code: a change that would break
// running refunds (a step added, removed or reordered without versioning) fails here.
// Three sets, as for the checkout (replay.test.ts): `refund-replay-<name>-encrypted.json` recorded
// under the test key ring as the code runs now; `…-before-patches-encrypted.json`, the same scenario
// as a run started before the patches it meets (tests/support/histories.ts); and the plain
// `refund-replay-<name>.json`, recorded before payloads were encrypted and before any patch, kept.
// Re-record the first two after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/workflows/refund-replay.test.ts
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { RefundActivities } from '../../activities/refunds.ts';
import {
  abandonRefundSignal, approveRefundSignal, refundManuallySignal, refundStateQuery, refundWorkflowId, retryRefundSignal, type RefundInput, type RefundState,
} from '../../shared/refunds.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { DEFAULT_REFUND_POLICY, type refund } from '../../workflows/refund.ts';
import { gate, startTestServer } from '../support/checkout-harness.ts';
import { readHistoryDir, recordedName, recordEachWay, withRecordingWorker, writeHistoryFile } from '../support/histories.ts';
import { mockRefundActivities, refundInput, refundWorld, stateWhen, type RefundWorld } from '../support/refund-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { keyIdOf, testDataConverter } from '../support/payload-keys.ts';

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/refund-histories/', import.meta.url));
const quiet = new DefaultLogger('ERROR');
const ENCRYPTED = /-encrypted$/;

let workflowBundle: WorkflowBundle;
before(async () => {
  Runtime.install({ logger: quiet });
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
});

type During = (h: WorkflowHandle<typeof refund>) => Promise<void>;
/** Fresh mocks for each recording (a scenario is recorded once per patch mode). */
type Prepare = () => { activities: RefundActivities; during?: During };
type Scenario = [name: string, input: Partial<RefundInput>, prepare: Prepare];

const LARGE = DEFAULT_REFUND_POLICY.approvalThresholdMinor + 1;
const large = () => refundWorld({ capturedMinor: 20_000, order: { ...refundWorld().order, totalMinor: 20_000 } });
const providerRejects = () => refundWorld({ providerSucceeds: (_id, attempt) => attempt > 1 });
const stuck = (h: WorkflowHandle<typeof refund>) => stateWhen(h, (s) => s.status === 'NEEDS_OPERATOR');
const plainly = (world: () => RefundWorld, during?: During): Prepare => () => ({ activities: mockRefundActivities(world()), during });

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const { currentDetails } = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return currentDetails ?? '';
}

/** Polls (in real time: queries do not move the time-skipping clock) until `ready` holds. */
async function eventually(ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A signal has been taken in: applied (`applied(state)`), or refused and shown in the details. */
const takenIn = (h: WorkflowHandle<typeof refund>, signal: string, applied: (s: RefundState) => boolean) =>
  eventually(async () => applied(await h.query(refundStateQuery)) || (await currentDetails(h)).includes(`ignored signal ${signal}`));

const SCENARIOS: Scenario[] = [
  ['full', { amount: 'full', restock: [{ sku: 'MUG', quantity: 2 }] }, plainly(refundWorld)],
  ['approved', { amount: LARGE }, plainly(large, async (h) => {
    await stateWhen(h, (s) => s.status === 'AWAITING_APPROVAL');
    await h.signal(approveRefundSignal, { by: 'ops', reason: 'checked' });
  })],
  ['expired', { amount: LARGE }, plainly(large)],
  ['retried', {}, plainly(providerRejects, async (h) => {
    await stuck(h);
    await h.signal(retryRefundSignal, { by: 'ops', reason: 'again' });
  })],
  ['manual', {}, plainly(providerRejects, async (h) => {
    await stuck(h);
    await h.signal(refundManuallySignal, { by: 'ops', reason: 'bank transfer', reference: 'SEPA-1' });
  })],
  ['abandoned', {}, plainly(providerRejects, async (h) => {
    await stuck(h);
    await h.signal(abandonRefundSignal, { by: 'ops', reason: 'store credit' });
  })],
  // the provider leaves the refund pending past an hour: the wait stalls (stalled-provider-wait), then it decides
  ['stalled', {}, () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let asks = 0;
    const activities = mockRefundActivities(world, {
      syncProviderRefund: async (input) => (++asks <= 65 ? { status: 'PENDING', failureReason: null, attempt: 1 } : happy.syncProviderRefund(input)),
    });
    return { activities };
  }],
  // an effect refused once waits on its slow timer, shown to operators (operator-visibility)
  ['refused-effect', {}, () => {
    const world = refundWorld();
    const happy = mockRefundActivities(world);
    let refusals = 0;
    const activities = mockRefundActivities(world, {
      recordOrderRefund: async (input) => {
        if (refusals++ === 0) throw ApplicationFailure.nonRetryable('order is locked by an export', 'order_locked');
        return happy.recordOrderRefund(input);
      },
    });
    return { activities };
  }],
  // the requester approves their own refund by signal: refused (four_eyes, operator-action-rules); a colleague approves
  ['four-eyes', { amount: LARGE, requestedBy: 'sup-sam' }, plainly(large, async (h) => {
    await stateWhen(h, (s) => s.status === 'AWAITING_APPROVAL');
    await h.signal(approveRefundSignal, { by: 'sup-sam', reason: 'my own, via the CLI' });
    await takenIn(h, 'approve', (s) => s.approval !== null);
    await h.signal(approveRefundSignal, { by: 'fin-fay', reason: 'customer verified' });
  })],
  // abandon while the operator's retry is being carried out: refused (action_pending, operator-action-rules)
  ['action-pending', {}, () => {
    const world = providerRejects();
    const happy = mockRefundActivities(world);
    const retrying = gate();
    const activities = mockRefundActivities(world, {
      retryProviderRefund: async (input) => {
        await retrying.opened;
        return happy.retryProviderRefund(input);
      },
    });
    const during: During = async (h) => {
      await stuck(h);
      await h.signal(retryRefundSignal, { by: 'fin-fay', reason: 'again' });
      await stateWhen(h, (s) => s.operatorAction?.action === 'retry');
      await h.signal(abandonRefundSignal, { by: 'fin-finn', reason: 'give up' });
      await takenIn(h, 'abandon', (s) => s.operatorAction?.action === 'abandon');
      retrying.open();
    };
    return { activities, during };
  }],
];

describe('refund replay', () => {
  test('records histories of finished refunds, as they run now and as runs from before the patches', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
    const env = await startTestServer();
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const [name, input, prepare] of SCENARIOS) {
        await recordEachWay(async (patches) => {
          const { activities, during } = prepare();
          const requestId = recordedName(`replay-${name}`, patches);
          const { result: handle, met } = await withRecordingWorker(env, { workflowBundle, activities, patches }, async (taskQueue) => {
            const handle = await env.client.workflow.start<typeof refund>('refund', {
              args: [refundInput(requestId, input)], taskQueue, workflowId: refundWorkflowId(requestId),
            });
            await during?.(handle);
            await handle.result();
            return handle;
          });
          await writeHistoryFile(`${HISTORIES_DIR}${handle.workflowId}.json`, await handle.fetchHistory());
          return met;
        });
      }
    } finally {
      await env.teardown();
    }
  });

  test('every recorded refund history replays against the current workflow code: encrypted, from before the patches, from before encryption', async () => {
    const histories = await readHistoryDir(HISTORIES_DIR);
    const names = new Set(histories.map((h) => h.workflowId));
    const missing = SCENARIOS.map(([name]) => `refund-replay-${name}-encrypted`).filter((id) => !names.has(id));
    assert.deepEqual(missing, [], `scenarios without a recorded history in ${HISTORIES_DIR}: record them (see the top of this file)`);
    const startInputKey = (h: (typeof histories)[number]) =>
      keyIdOf(h.history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
    const encrypted = histories.filter((h) => ENCRYPTED.test(h.workflowId));
    const plain = histories.filter((h) => !ENCRYPTED.test(h.workflowId));
    assert.ok(plain.length >= 6, `expected the histories from before encryption in ${HISTORIES_DIR}`);
    assert.deepEqual(new Set(encrypted.map(startInputKey)), new Set(['test-a']), 'the encrypted sets are encrypted');
    assert.deepEqual(new Set(plain.map(startInputKey)), new Set([null]), 'the older set is not');
    const replayed: string[] = [];
    // the test ring reads histories recorded under it; the older, unencrypted ones pass through
    for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter() }, histories)) {
      assert.equal(error, undefined, `${workflowId} no longer replays: ${error?.message}`);
      replayed.push(workflowId);
    }
    assert.deepEqual(replayed, histories.map((h) => h.workflowId));
  });
});
