// The checkout worker process. SIGINT/SIGTERM stop polling, let in-flight tasks finish, exit 0.
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig, temporalAddress } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { createCheckoutWorker } from './checkout-worker.ts';
import { createCouponGrantsWorker } from './coupon-grants-worker.ts';
import { COUPON_GRANTS_TASK_QUEUE } from '../shared/coupons.ts';

// The runtime turns these signals into worker.shutdown(); worker.run() resolves once drained.
Runtime.install({ shutdownSignals: ['SIGINT', 'SIGTERM'] });

const config = loadConfig();
const address = temporalAddress(config);
const connection = await NativeConnection.connect({ address });
const db = createDb(config.databaseUrl);
try {
  const worker = await createCheckoutWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: CHECKOUT_TASK_QUEUE,
    serviceUrls: config.serviceUrls,
    db,
  });
  const grantsWorker = await createCouponGrantsWorker({
    connection,
    namespace: config.temporal.namespace,
    serviceUrls: config.serviceUrls,
    grantsPerSecond: config.couponGrantRatePerSecond,
  });
  // Both drain on the same shutdown signal; if one fails, the other is shut down too.
  const stopBoth = (err: unknown) => {
    for (const w of [worker, grantsWorker]) if (w.getState() === 'RUNNING') w.shutdown();
    throw err;
  };
  const running = Promise.all([worker.run().catch(stopBoth), grantsWorker.run().catch(stopBoth)]);
  console.log(
    `checkout worker ready: task queues "${CHECKOUT_TASK_QUEUE}" and "${COUPON_GRANTS_TASK_QUEUE}" ` +
      `(${config.couponGrantRatePerSecond} grants/s) on ${address} (namespace ${config.temporal.namespace})`,
  );
  await running;
  console.log('checkout worker stopped');
} finally {
  await connection.close();
  await db.$disconnect();
}
