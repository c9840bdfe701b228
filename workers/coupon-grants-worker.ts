// The worker of the coupon-grant activities. Its task queue carries the global grant rate: the
// Temporal server hands out at most `grantsPerSecond` grant tasks per second across every worker
// polling the queue, so adding workers adds capacity without ever exceeding the coupons service's limit.
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { couponIssuanceActivities, type CouponIssuanceActivities } from '../activities/coupons-issuance.ts';
import { type ServiceCredentials, withServiceCredentials } from '../activities/http.ts';
import type { ServiceUrls } from '../lib/config.ts';
import { requireCredentials } from './checkout-worker.ts';
import { COUPON_GRANTS_TASK_QUEUE } from '../shared/coupons.ts';
import { workerObservability } from './interceptors.ts';

export interface CouponGrantsWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  /** `temporalDataConverter(config.payloadKeys)`: the grants' inputs and results are payloads too. */
  dataConverter: DataConverter;
  serviceUrls: ServiceUrls;
  /** What the grant sends to the coupons service; required unless `activities` stands in. */
  credentials?: ServiceCredentials;
  /** `COUPON_GRANT_RATE_PER_SECOND` (lib/config.ts). */
  grantsPerSecond: number;
  /** Stand-in for the HTTP grant, for tests. */
  activities?: Pick<CouponIssuanceActivities, 'grantCoupon'>;
}

export async function createCouponGrantsWorker(opts: CouponGrantsWorkerOptions): Promise<Worker> {
  const { grantCoupon } =
    opts.activities ?? withServiceCredentials(requireCredentials(opts.credentials), couponIssuanceActivities(opts.serviceUrls.coupons));
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: COUPON_GRANTS_TASK_QUEUE,
    dataConverter: opts.dataConverter,
    activities: { grantCoupon },
    maxTaskQueueActivitiesPerSecond: opts.grantsPerSecond,
    ...workerObservability({ workflows: false }),
    shutdownGraceTime: '20 seconds',
  });
}
