// Builds the checkout worker: the checkout workflow plus its activities, bound to the services' URLs
// and the credentials they send.
import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities, type CheckoutActivities } from '../activities/index.ts';
import { couponIssuanceActivities, distributionRecipientActivities, type CouponIssuanceActivities, type DistributionRecipientActivities } from '../activities/coupons-issuance.ts';
import { type ServiceCredentials, withServiceCredentials } from '../activities/http.ts';
import { reconciliationActivities } from '../activities/reconciliation.ts';
import type { ServiceUrls } from '../lib/config.ts';
import type { Db } from '../lib/db.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { workerObservability } from './interceptors.ts';

/** Webpack resolves the workflows' explicit `.ts` imports as plain file paths; no loader config needed. */
export const CHECKOUT_WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface CheckoutWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /**
   * `temporalDataConverter(config.payloadKeys)` (lib/data-converter.ts): required, so no worker
   * writes plaintext payloads or fails to read encrypted ones.
   */
  dataConverter: DataConverter;
  serviceUrls: ServiceUrls;
  /** What the activities send to the services and the provider; required unless `activities` stands in. */
  credentials?: ServiceCredentials;
  /**
   * A prebuilt bundle (`bundleWorkflowCode({ workflowsPath: CHECKOUT_WORKFLOWS_PATH, ...WORKFLOW_BUNDLE_CONVERTERS })`):
   * tests pay for webpack once. Without it, Worker.create bundles with `dataConverter.failureConverterPath`.
   */
  workflowBundle?: WorkflowBundle;
  /** Stand-ins for the HTTP activities, for tests (with a stand-in bundle, whatever its workflows call). */
  activities?: Partial<CheckoutActivities & CouponIssuanceActivities & DistributionRecipientActivities> & object;
  /** Our own database (owned by the caller): with it the worker also runs the reconciliation and distribution-recipient activities. */
  db?: Db;
}

export async function createCheckoutWorker(opts: CheckoutWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? CHECKOUT_TASK_QUEUE,
    dataConverter: opts.dataConverter,
    activities: opts.activities ?? withServiceCredentials(requireCredentials(opts.credentials), {
      ...createActivities(opts.serviceUrls),
      ...couponIssuanceActivities(opts.serviceUrls.coupons),
      ...(opts.db ? { ...reconciliationActivities(opts.serviceUrls, opts.db), ...distributionRecipientActivities(opts.db) } : {}),
    }),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: CHECKOUT_WORKFLOWS_PATH }),
    // Tracing, business metrics and log context. A prebuilt bundle carries workflow interceptors only
    // if it was built with `workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES`.
    ...workerObservability({ workflows: true }),
    // On shutdown, let in-flight service calls (≤ 15 s each) finish instead of cutting them off.
    shutdownGraceTime: '20 seconds',
  });
}

/** Real activities without credentials would only collect 401s: refuse to build such a worker. */
export function requireCredentials(credentials: ServiceCredentials | undefined): ServiceCredentials {
  if (!credentials) throw new Error('a worker with the real activities needs credentials (SERVICE_API_KEYS, PSP_API_KEYS)');
  return credentials;
}
