// The checkout worker process. SIGINT/SIGTERM stop polling, let in-flight tasks finish, exit 0.
import { NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig, temporalAddress } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { createCheckoutWorker } from './checkout-worker.ts';

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
  const running = worker.run();
  console.log(`checkout worker ready: task queue "${CHECKOUT_TASK_QUEUE}" on ${address} (namespace ${config.temporal.namespace})`);
  await running;
  console.log('checkout worker stopped');
} finally {
  await connection.close();
  await db.$disconnect();
}
