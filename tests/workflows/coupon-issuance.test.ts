// CouponIssuance and CouponDistribution on the time-skipping server, against an in-memory
// coupons service: issued; exhausted; a grant that timed out after taking effect is found, not
// made twice; a grant that finally fails gives its quota back; a distribution pages through its
// recipients (continuing as new), pauses, resumes, is cancelled and reports its progress.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, type Worker, type WorkflowBundle } from '@temporalio/worker';
import type { CouponGrant, CouponIssuanceActivities, CouponRequest, DistributionRecipientActivities } from '../../activities/coupons-issuance.ts';
import { ServiceUnavailableError } from '../../activities/http.ts';
import { loadConfig } from '../../lib/config.ts';
import {
  cancelDistributionSignal,
  distributionBatchProgressQuery,
  distributionProgressQuery,
  distributionRequestId,
  distributionWorkflowId,
  issuanceStateQuery,
  issuanceWorkflowId,
  pauseDistributionSignal,
  resumeDistributionSignal,
  type DistributionInput,
  type DistributionProgress,
  type IssuanceResult,
} from '../../shared/coupons.ts';
import { BusinessFailure } from '../../shared/errors.ts';
import { CustomerIdKey, FlowStatusKey, NeedsAttentionKey } from '../../shared/search-attributes.ts';
import { CHECKOUT_WORKFLOWS_PATH, createCheckoutWorker } from '../../workers/checkout-worker.ts';
import { createCouponGrantsWorker } from '../../workers/coupon-grants-worker.ts';
import { GRANT_ATTEMPTS } from '../../workflows/coupon-issuance.ts';
import { startTestServer, until } from '../support/checkout-harness.ts';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { testDataConverter } from '../support/payload-keys.ts';

type Activities = CouponIssuanceActivities & DistributionRecipientActivities;

/** The coupons service as the workflows see it, plus our recipients table. */
class FakeCoupons {
  reservations = new Map<string, 'RESERVED' | 'CONFIRMED' | 'RELEASED'>();
  grants = new Map<string, CouponGrant>();
  calls: { name: keyof Activities; requestId?: string }[] = [];
  /** Grants let through so far; a grant beyond it waits (lets a test catch a distribution mid-way). */
  grantAllowance = Infinity;
  recipients: string[] = [];

  constructor(public quota: number) {}

  used(): number {
    return [...this.reservations.values()].filter((s) => s !== 'RELEASED').length;
  }
  count(name: keyof Activities): number {
    return this.calls.filter((c) => c.name === name).length;
  }

  activities(overrides: Partial<Activities> = {}): Activities {
    const happy: Activities = {
      reserveCouponQuota: async ({ requestId }) => {
        if (this.reservations.has(requestId)) return;
        if (this.used() >= this.quota) throw ApplicationFailure.nonRetryable('Campaign quota exhausted', BusinessFailure.QuotaExhausted);
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
    };
    return Object.fromEntries(
      (Object.keys(happy) as (keyof Activities)[]).map((name) => [
        name,
        async (input: CouponRequest & { requestId?: string }) => {
          this.calls.push({ name, requestId: input.requestId });
          return ((overrides[name] ?? happy[name]) as (i: unknown) => Promise<unknown>)(input);
        },
      ]),
    ) as unknown as Activities;
  }

  grant({ requestId, campaignId, customerId }: CouponRequest): CouponGrant {
    const existing = this.grants.get(requestId);
    if (existing) return existing;
    const grant = { requestId, campaignId, customerId, couponCode: `CPN-${this.grants.size + 1}` };
    this.grants.set(requestId, grant);
    return grant;
  }
}

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundle;
let grantsWorker: Worker;
let grantsRunning: Promise<void>;
/** The grant worker serves the one fixed grant queue for the whole file; each test plugs its activities in. */
let current: Activities;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  env = await startTestServer();
  workflowBundle = await bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS, logger: new DefaultLogger('WARN') });
  grantsWorker = await createCouponGrantsWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    dataConverter: testDataConverter(),
    serviceUrls: loadConfig().serviceUrls,
    grantsPerSecond: 1_000,
    activities: { grantCoupon: (request) => current.grantCoupon(request) },
  });
  grantsRunning = grantsWorker.run();
});
after(async () => {
  grantsWorker?.shutdown();
  await grantsRunning;
  await env?.teardown();
});

let run = 0;
async function withWorker<T>(activities: Activities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  current = activities;
  const taskQueue = `coupons-test-${process.pid}-${++run}`;
  const worker = await createCheckoutWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    dataConverter: testDataConverter(),
    serviceUrls: loadConfig().serviceUrls,
    workflowBundle,
    activities,
  });
  return worker.runUntil(fn(taskQueue));
}

async function issue(coupons: FakeCoupons, activities: Activities, requestId: string): Promise<IssuanceResult> {
  return withWorker(activities, (taskQueue) =>
    env.client.workflow.execute('couponIssuance', {
      taskQueue,
      workflowId: issuanceWorkflowId(requestId),
      args: [{ requestId, campaignId: 'CAMP-1', customerId: 'cust-1' }],
    }) as Promise<IssuanceResult>,
  );
}

describe('coupon issuance', () => {
  test('reserves, grants and confirms: ISSUED with the code', async () => {
    const coupons = new FakeCoupons(10);
    const result = await issue(coupons, coupons.activities(), 'req-issued');
    assert.equal(result.status, 'ISSUED', JSON.stringify(result));
    assert.equal(result.couponCode, 'CPN-1');
    assert.equal(coupons.reservations.get('req-issued'), 'CONFIRMED');
    assert.equal(coupons.grants.size, 1);
  });

  test('an exhausted campaign answers EXHAUSTED and grants nothing', async () => {
    const coupons = new FakeCoupons(0);
    const result = await issue(coupons, coupons.activities(), 'req-exhausted');
    assert.equal(result.status, 'EXHAUSTED', JSON.stringify(result));
    assert.equal(result.couponCode, null);
    assert.match(result.reason ?? '', /exhausted/i);
    assert.equal(coupons.count('grantCoupon'), 0);
    assert.equal(coupons.count('releaseCouponQuota'), 0);
  });

  test('a grant that timed out after taking effect is found by asking, not granted twice', async () => {
    const coupons = new FakeCoupons(10);
    const acts = coupons.activities({
      // the service did the work, but our HTTP client gave up before its answer came
      grantCoupon: async (request) => {
        coupons.grant(request);
        throw new ServiceUnavailableError('coupons service timed out: POST /wallet/grants');
      },
    });
    const result = await issue(coupons, acts, 'req-timeout');
    assert.equal(result.status, 'ISSUED', JSON.stringify(result));
    assert.equal(result.couponCode, 'CPN-1');
    assert.equal(coupons.count('grantCoupon'), 1, 'asked before retrying, so no second grant');
    assert.equal(coupons.count('findCouponGrant'), 1);
    assert.equal(coupons.grants.size, 1);
    assert.equal(coupons.reservations.get('req-timeout'), 'CONFIRMED');
  });

  test('a grant that finally fails releases its quota reservation: FAILED, quota back', async () => {
    const coupons = new FakeCoupons(1);
    const acts = coupons.activities({
      grantCoupon: async () => {
        throw new ServiceUnavailableError('coupons service unreachable: POST /wallet/grants');
      },
    });
    const result = await issue(coupons, acts, 'req-fails');
    assert.equal(result.status, 'FAILED', JSON.stringify(result));
    assert.match(result.reason ?? '', /could not be granted/);
    assert.equal(coupons.count('grantCoupon'), GRANT_ATTEMPTS);
    assert.equal(coupons.count('findCouponGrant'), GRANT_ATTEMPTS, 'asked after every failed attempt');
    assert.equal(coupons.reservations.get('req-fails'), 'RELEASED');
    assert.equal(coupons.used(), 0, 'the quota is available again');
    assert.equal(coupons.grants.size, 0);
  });
});

describe('coupon issuance visibility', () => {
  test('the state query and the search attributes say where an issuance is, then how it ended', async () => {
    const coupons = new FakeCoupons(10);
    coupons.grantAllowance = 0; // the grant waits until the test has looked
    const requestId = 'req-watched';
    const { handle, result } = await withWorker(coupons.activities(), async (taskQueue) => {
      const handle = await env.client.workflow.start('couponIssuance', {
        taskQueue,
        workflowId: issuanceWorkflowId(requestId),
        args: [{ requestId, campaignId: 'CAMP-1', customerId: 'cust-7' }],
      });
      for (;;) {
        const state = await handle.query(issuanceStateQuery).catch(() => null);
        if (state?.step === 'GRANTING') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const running = (await handle.describe()).typedSearchAttributes;
      assert.equal(running.get(FlowStatusKey), 'RUNNING');
      assert.equal(running.get(NeedsAttentionKey), false);
      coupons.grantAllowance = Infinity;
      return { handle, result: (await handle.result()) as IssuanceResult };
    });
    assert.equal(result.status, 'ISSUED');
    const done = (await handle.describe()).typedSearchAttributes;
    assert.equal(done.get(FlowStatusKey), 'ISSUED');
    assert.equal(done.get(NeedsAttentionKey), false);
    assert.equal(done.get(CustomerIdKey), 'cust-7');
  });
});

describe('coupon distribution', () => {
  const customers = (n: number) => Array.from({ length: n }, (_, i) => `cust-${String(i).padStart(3, '0')}`);
  let firstRunId = '';
  let lastRunId = '';
  const input = (distributionId: string): DistributionInput => ({ distributionId, campaignId: 'CAMP-1', batchSize: 2, parallelBatches: 1 });

  async function distribute(
    coupons: FakeCoupons,
    distributionId: string,
    during: (handle: ReturnType<typeof env.client.workflow.getHandle>) => Promise<void> = async () => {},
  ): Promise<DistributionProgress> {
    return withWorker(coupons.activities(), async (taskQueue) => {
      const handle = await env.client.workflow.start('couponDistribution', {
        taskQueue,
        workflowId: distributionWorkflowId(distributionId),
        args: [input(distributionId)],
      });
      await during(handle);
      const result = (await handle.result()) as DistributionProgress;
      firstRunId = handle.firstExecutionRunId;
      lastRunId = (await handle.describe()).runId;
      return result;
    });
  }

  test('issues once to every recipient in batches, continuing as new, and counts what the quota refused', async () => {
    const coupons = new FakeCoupons(20);
    coupons.recipients = customers(25);
    const result = await distribute(coupons, 'dist-all');
    assert.deepEqual(result.totals, { issued: 20, exhausted: 5, limitReached: 0, failed: 0 });
    assert.equal(result.status, 'COMPLETED');
    assert.equal(result.processed, 25);
    assert.equal(coupons.grants.size, 20);
    for (const grant of coupons.grants.values()) assert.equal(grant.requestId, distributionRequestId('dist-all', grant.customerId));
    // 13 waves of one batch, 10 per run: the history was cut at least once
    assert.notEqual(firstRunId, lastRunId, 'continued as new');
  });

  test('pause stops the progress, resume finishes it; the query reports it all along', async () => {
    const coupons = new FakeCoupons(100);
    coupons.recipients = customers(12);
    coupons.grantAllowance = 4;
    let pausedAt = -1;
    const result = await distribute(coupons, 'dist-pause', async (handle) => {
      await until(() => coupons.grants.size === 4);
      // the third batch (recipients 5–6) waits on its grants: its own query says so
      const batch = env.client.workflow.getHandle(`${distributionWorkflowId('dist-pause')}-batch-4`);
      let batchProgress = await batch.query(distributionBatchProgressQuery).catch(() => null);
      for (let i = 0; i < 200 && batchProgress?.recipients !== 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        batchProgress = await batch.query(distributionBatchProgressQuery).catch(() => null);
      }
      assert.deepEqual(batchProgress && [batchProgress.offset, batchProgress.recipients, batchProgress.processed], [4, 2, 0]);
      assert.equal(await (await batch.describe()).staticSummary(), 'Coupons of campaign CAMP-1 · recipients 5–6');
      await handle.signal(pauseDistributionSignal);
      coupons.grantAllowance = Infinity; // the wave in flight ends; no new one starts
      let progress = await handle.query(distributionProgressQuery);
      // PAUSED once the wave in flight has ended and is counted
      while (progress.status !== 'PAUSED') {
        await new Promise((r) => setTimeout(r, 50));
        progress = await handle.query(distributionProgressQuery);
      }
      pausedAt = progress.processed;
      const paused = (await handle.describe()).typedSearchAttributes;
      assert.equal(paused.get(FlowStatusKey), 'PAUSED');
      assert.equal(paused.get(NeedsAttentionKey), false, 'a pause is a decision, not a run waiting for one');
      await new Promise((r) => setTimeout(r, 500));
      const still = await handle.query(distributionProgressQuery);
      assert.equal(still.status, 'PAUSED');
      assert.equal(still.processed, pausedAt, 'no progress while paused');
      assert.equal(still.recipients, 12);
      assert.equal(coupons.grants.size, pausedAt, 'no grants while paused');
      await handle.signal(resumeDistributionSignal);
    });
    assert.ok(pausedAt > 0 && pausedAt < 12, `paused mid-way at ${pausedAt}`);
    assert.equal(result.status, 'COMPLETED');
    assert.equal(result.totals.issued, 12);
    assert.equal(coupons.grants.size, 12);
  });

  test('cancel ends the distribution after the wave in flight: CANCELLED, nothing issued after it', async () => {
    const coupons = new FakeCoupons(100);
    coupons.recipients = customers(12);
    coupons.grantAllowance = 2;
    const result = await distribute(coupons, 'dist-cancel', async (handle) => {
      await until(() => coupons.grants.size === 2);
      await handle.signal(cancelDistributionSignal, { by: 'ops', reason: 'wrong list' });
      coupons.grantAllowance = Infinity;
    });
    assert.equal(result.status, 'CANCELLED');
    assert.ok(result.processed < 12, `stopped at ${result.processed}`);
    assert.equal(result.totals.issued, result.processed);
    assert.equal(coupons.grants.size, result.processed);
    assert.ok([...coupons.reservations.values()].every((s) => s === 'CONFIRMED'), 'no reservation left half-way');
  });
});
