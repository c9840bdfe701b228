// The checkout worker process. SIGINT/SIGTERM stop polling, let in-flight tasks finish, exit 0.
// It logs JSON lines (lib/logger.ts), exports traces when OTEL_EXPORTER_OTLP_ENDPOINT is set, and
// serves Prometheus `/metrics` on WORKER_METRICS_ADDRESS: the SDK's worker metrics and the business
// counters of workflows/interceptors.ts. In production it refuses to start on development secrets.
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { exitUnlessProductionReady, loadConfig, temporalAddress } from '../lib/config.ts';
import { temporalDataConverter } from '../lib/data-converter.ts';
import { createDb } from '../lib/db.ts';
import { createLogger, sdkLogFunction } from '../lib/logger.ts';
import { installTracing } from '../lib/telemetry.ts';
import { CHECKOUT_TASK_QUEUE } from '../shared/task-queues.ts';
import { createCheckoutWorker } from './checkout-worker.ts';
import { createCouponGrantsWorker } from './coupon-grants-worker.ts';
import { COUPON_GRANTS_TASK_QUEUE } from '../shared/coupons.ts';

const log = createLogger('worker');
exitUnlessProductionReady('worker', (message) => log.error(message));
const config = loadConfig();
// The activities' identity towards the services and the provider: the first key of each list is sent.
const credentials = { serviceKey: config.serviceKeys[0]!, pspApiKey: config.pspApiKeys[0]! };
const tracing = installTracing({ serviceName: 'worker', otlpEndpoint: config.otlpEndpoint });

// Before any connection: the runtime is configured once. It turns these signals into
// worker.shutdown(); worker.run() resolves once drained.
Runtime.install({
  shutdownSignals: ['SIGINT', 'SIGTERM'],
  logger: new DefaultLogger('INFO', sdkLogFunction('worker')),
  telemetryOptions: { metrics: { prometheus: { bindAddress: config.workerMetricsAddress } } },
});

const address = temporalAddress(config);
const connection = await NativeConnection.connect({ address });
// Both workers encrypt what they write and decrypt with every key of the ring (lib/payload-codec.ts).
const dataConverter = temporalDataConverter(config.payloadKeys);
const db = createDb(config.databaseUrl);
try {
  const worker = await createCheckoutWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: CHECKOUT_TASK_QUEUE,
    dataConverter,
    serviceUrls: config.serviceUrls,
    credentials,
    db,
  });
  const grantsWorker = await createCouponGrantsWorker({
    connection,
    namespace: config.temporal.namespace,
    dataConverter,
    serviceUrls: config.serviceUrls,
    credentials,
    grantsPerSecond: config.couponGrantRatePerSecond,
  });
  // Both drain on the same shutdown signal; if one fails, the other is shut down too.
  const stopBoth = (err: unknown) => {
    for (const w of [worker, grantsWorker]) if (w.getState() === 'RUNNING') w.shutdown();
    throw err;
  };
  const running = Promise.all([worker.run().catch(stopBoth), grantsWorker.run().catch(stopBoth)]);
  log.info(
    `checkout worker ready: task queues "${CHECKOUT_TASK_QUEUE}" and "${COUPON_GRANTS_TASK_QUEUE}" ` +
      `(${config.couponGrantRatePerSecond} grants/s) on ${address} (namespace ${config.temporal.namespace}), ` +
      `metrics on http://${config.workerMetricsAddress}/metrics`,
  );
  await running;
  log.info('checkout worker stopped');
} finally {
  await connection.close();
  await db.$disconnect();
  await tracing.shutdown();
}
