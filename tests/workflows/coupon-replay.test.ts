// Replays recorded coupon histories against the current workflow code: a change that would break
// running issuances or distributions (a step added, removed or reordered without versioning)
// fails here. Recorded under the test key ring: single issuances (issued; exhausted; a grant that
// timed out after taking effect, found by asking; a grant that finally failed, its quota given
// back) and one small distribution (11 recipients in batches of one, paused and resumed, continued
// as new after ten waves, the last recipient past the quota): both runs of the parent and two of
// its batches. A scenario that meets a `patched()` is also recorded as a run from before the
// patches (tests/support/histories.ts). Re-record after an intended, versioned change with:
//   RECORD_HISTORIES=1 node --import tsx --test tests/workflows/coupon-replay.test.ts
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { CouponGrant, CouponIssuanceActivities, CouponRequest, DistributionRecipientActivities } from '../../activities/coupons-issuance.ts';
import { ServiceUnavailableError } from '../../activities/http.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import {
  distributionProgressQuery,
  distributionWorkflowId,
  issuanceWorkflowId,
  pauseDistributionSignal,
  resumeDistributionSignal,
  type DistributionInput,
  type DistributionProgress,
  type IssuanceResult,
} from '../../shared/coupons.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import { createCouponGrantsWorker } from '../../workers/coupon-grants-worker.ts';
import { loadConfig } from '../../lib/config.ts';
import { startTestServer, until } from '../support/checkout-harness.ts';
import {
  readHistoryDir, recordedName, recordEachWay, withRecordingWorker, workflowTypeOf, writeHistoryFile, type PatchMode,
} from '../support/histories.ts';
import { keyIdOf, testDataConverter } from '../support/payload-keys.ts';

const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/coupon-histories/', import.meta.url));
const quiet = new DefaultLogger('ERROR');

type Activities = CouponIssuanceActivities & DistributionRecipientActivities;

/** The coupons service and our recipients table, in memory. */
class FakeCoupons {
  reservations = new Map<string, 'RESERVED' | 'CONFIRMED' | 'RELEASED'>();
  grants = new Map<string, CouponGrant>();
  /** Grants let through so far; a grant beyond it waits (catches a distribution mid-way). */
  grantAllowance = Infinity;

  constructor(private readonly quota: number, readonly recipients: string[] = [], private readonly overrides: Partial<Activities> = {}) {}

  activities(): Activities {
    const used = () => [...this.reservations.values()].filter((s) => s !== 'RELEASED').length;
    return {
      reserveCouponQuota: async ({ requestId }) => {
        if (this.reservations.has(requestId)) return;
        if (used() >= this.quota) throw ApplicationFailure.nonRetryable('Campaign quota exhausted', BusinessFailure.QuotaExhausted);
        this.reservations.set(requestId, 'RESERVED');
      },
      grantCoupon: async (request) => {
        await until(() => this.grants.size < this.grantAllowance || this.grants.has(request.requestId));
        return this.grant(request);
      },
      findCouponGrant: async ({ requestId }) => this.grants.get(requestId) ?? null,
      confirmCouponQuota: async ({ requestId }) => void this.reservations.set(requestId, 'CONFIRMED'),
      releaseCouponQuota: async ({ requestId }) => void this.reservations.set(requestId, 'RELEASED'),
      countDistributionRecipients: async () => this.recipients.length,
      readDistributionRecipients: async ({ offset, limit }) => this.recipients.slice(offset, offset + limit),
      ...this.overrides,
    };
  }

  grant({ requestId, campaignId, customerId }: CouponRequest): CouponGrant {
    const existing = this.grants.get(requestId);
    if (existing) return existing;
    const grant = { requestId, campaignId, customerId, couponCode: `CPN-${this.grants.size + 1}` };
    this.grants.set(requestId, grant);
    return grant;
  }
}

let workflowBundle: WorkflowBundle;
before(async () => {
  Runtime.install({ logger: quiet });
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: quiet });
});

const ISSUANCES: [name: string, coupons: () => FakeCoupons, expected: IssuanceResult['status']][] = [
  ['issued', () => new FakeCoupons(10), 'ISSUED'],
  ['exhausted', () => new FakeCoupons(0), 'EXHAUSTED'],
  // the service granted, but our client gave up before its answer: found by asking, not granted twice
  ['found-after-timeout', () => {
    const coupons: FakeCoupons = new FakeCoupons(10, [], {
      grantCoupon: async (request) => {
        coupons.grant(request);
        throw new ServiceUnavailableError('coupons service timed out: POST /wallet/grants');
      },
    });
    return coupons;
  }, 'ISSUED'],
  // every attempt fails: the reservation is released
  ['released', () => new FakeCoupons(1, [], {
    grantCoupon: async () => {
      throw new ServiceUnavailableError('coupons service unreachable: POST /wallet/grants');
    },
  }), 'FAILED'],
];

const customers = (n: number) => Array.from({ length: n }, (_, i) => `cust-${String(i).padStart(3, '0')}`);

/** 11 recipients, one per batch and wave: ten waves, then the run continues as new for the last. */
const DISTRIBUTION = { recipients: 11, quota: 10, batchSize: 1, parallelBatches: 1 };

describe('coupon replay', () => {
  test('records histories of finished issuances and of a paused, resumed and continued distribution', { skip: process.env.RECORD_HISTORIES !== '1' }, async () => {
    const env = await startTestServer();
    // The grants run on their own task queue (the rate-limited one); its worker reaches whichever fake is current.
    let current: Activities = new FakeCoupons(0).activities();
    const grants = await createCouponGrantsWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      dataConverter: testDataConverter(),
      serviceUrls: loadConfig().serviceUrls,
      grantsPerSecond: 1_000,
      activities: { grantCoupon: (request) => current.grantCoupon(request) },
    });
    const granting = grants.run();
    const record = async (patches: PatchMode, coupons: FakeCoupons, body: (taskQueue: string) => Promise<void>) => {
      current = coupons.activities();
      const { met } = await withRecordingWorker(env, { workflowBundle, activities: current, patches }, body);
      return met;
    };
    try {
      await mkdir(HISTORIES_DIR, { recursive: true });
      for (const [name, coupons, expected] of ISSUANCES) {
        await recordEachWay((patches) => {
          const requestId = recordedName(`coupon-issuance-${name}`, patches);
          return record(patches, coupons(), async (taskQueue) => {
            const handle = await env.client.workflow.start('couponIssuance', {
              taskQueue, workflowId: issuanceWorkflowId(requestId), args: [{ requestId, campaignId: 'CAMP-1', customerId: 'cust-1' }],
            });
            const result = (await handle.result()) as IssuanceResult;
            assert.equal(result.status, expected, `${name}: ${JSON.stringify(result)}`);
            await writeHistoryFile(`${HISTORIES_DIR}${recordedName(`coupon-issuance-${name}`, patches)}.json`, await handle.fetchHistory());
          });
        });
      }
      await recordEachWay((patches) => {
        const coupons = new FakeCoupons(DISTRIBUTION.quota, customers(DISTRIBUTION.recipients));
        return record(patches, coupons, (taskQueue) => recordDistribution(env, taskQueue, coupons, patches));
      });
    } finally {
      grants.shutdown();
      await granting;
      await env.teardown();
    }
  });

  test('every recorded coupon history replays against the current workflow code', async () => {
    const histories = await readHistoryDir(HISTORIES_DIR);
    const types = new Set(histories.map((h) => workflowTypeOf(h.history)));
    assert.deepEqual(
      [...types].sort(),
      [WORKFLOW_TYPES.couponDistribution, WORKFLOW_TYPES.couponDistributionBatch, WORKFLOW_TYPES.couponIssuance].sort(),
      `a recorded history of each coupon workflow in ${HISTORIES_DIR}`,
    );
    const continued = histories.filter((h) => h.history.events![0]!.workflowExecutionStartedEventAttributes!.continuedExecutionRunId);
    assert.ok(continued.length > 0, 'a distribution run that was continued as new is among them');
    const keys = new Set(histories.map((h) => keyIdOf(h.history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!)));
    assert.deepEqual(keys, new Set(['test-a']), 'recorded encrypted');
    const replayed: string[] = [];
    for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter() }, histories)) {
      assert.equal(error, undefined, `${workflowId} no longer replays: ${error?.message}`);
      replayed.push(workflowId);
    }
    assert.deepEqual(replayed, histories.map((h) => h.workflowId));
  });
});

/**
 * Runs the distribution: paused by signal once two grants went through (the wave in flight ends),
 * resumed once PAUSED; writes both runs of the parent, its first batch and its last (exhausted).
 */
async function recordDistribution(env: TestWorkflowEnvironment, taskQueue: string, coupons: FakeCoupons, patches: PatchMode): Promise<void> {
  const distributionId = recordedName('replay', patches);
  const workflowId = distributionWorkflowId(distributionId);
  const input: DistributionInput = { distributionId, campaignId: 'CAMP-1', batchSize: DISTRIBUTION.batchSize, parallelBatches: DISTRIBUTION.parallelBatches };
  coupons.grantAllowance = 2;
  const handle = await env.client.workflow.start('couponDistribution', { taskQueue, workflowId, args: [input] });
  await until(() => coupons.grants.size === 2);
  await handle.signal(pauseDistributionSignal, { by: 'mkt-mia', reason: 'check the list' });
  coupons.grantAllowance = Infinity;
  for (let i = 0; (await handle.query(distributionProgressQuery)).status !== 'PAUSED'; i++) {
    assert.ok(i < 200, 'the distribution never paused');
    await new Promise((r) => setTimeout(r, 50));
  }
  await handle.signal(resumeDistributionSignal, { by: 'mkt-mia' });
  const result = (await handle.result()) as DistributionProgress;
  assert.deepEqual([result.status, result.totals], ['COMPLETED', { issued: 10, exhausted: 1, limitReached: 0, failed: 0 }]);
  const lastRunId = (await handle.describe()).runId;
  assert.notEqual(lastRunId, handle.firstExecutionRunId, 'continued as new');
  const base = (part: string) => `${HISTORIES_DIR}${recordedName(`coupon-distribution-${part}`, patches)}.json`;
  await writeHistoryFile(base('run-1'), await env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).fetchHistory());
  await writeHistoryFile(base('run-2'), await env.client.workflow.getHandle(workflowId, lastRunId).fetchHistory());
  await writeHistoryFile(base('batch-first'), await env.client.workflow.getHandle(`${workflowId}-batch-0`).fetchHistory());
  await writeHistoryFile(base('batch-exhausted'), await env.client.workflow.getHandle(`${workflowId}-batch-${DISTRIBUTION.recipients - 1}`).fetchHistory());
}
