// The one config loader: every process reads its settings here, from the
// environment, with defaults that work for `bin/stack` on a developer machine.

export interface ServiceUrls {
  orders: string;
  inventory: string;
  coupons: string;
  loyalty: string;
  payments: string;
  psp: string;
}

export interface Config {
  databaseUrl: string;
  temporal: {
    /** host:port of an existing cluster; when unset, bin/stack starts the dev server. */
    address: string | undefined;
    namespace: string;
    uiUrl: string;
  };
  apiPort: number;
  servicePorts: Record<keyof ServiceUrls, number>;
  serviceUrls: ServiceUrls;
  /** The provider's webhooks, as POST /webhooks/psp verifies them. */
  webhook: {
    /** `PSP_WEBHOOK_SECRETS`, comma-separated: every secret accepted (several while rotating). */
    secrets: string[];
    /** `PSP_WEBHOOK_TOLERANCE_SECONDS`: how far a signed timestamp may be from now. */
    toleranceSeconds: number;
  };
  /** The payment-provider simulator's own settings (it stands in for an external system). */
  psp: {
    /** `PSP_WEBHOOK_SECRET`: the secret the simulator signs webhooks with. */
    webhookSecret: string;
    /** `PSP_TIMEOUT_CARD_MS`: how long the timeout test card holds a request. */
    timeoutCardMs: number;
  };
  /** `RECONCILIATION_EVERY`: interval of the reconciliation Schedule when bin/stack creates it. */
  reconciliationEvery: string;
  /**
   * Refund policy overrides for refunds started through the API (unset → the workflow's
   * defaults): `REFUND_APPROVAL_THRESHOLD_MINOR`, `REFUND_ESCALATE_AFTER_MS`, `REFUND_EXPIRE_AFTER_MS`.
   */
  refundPolicy: { approvalThresholdMinor?: number; escalateAfterMs?: number; expireAfterMs?: number };
  /**
   * `COUPON_GRANT_RATE_PER_SECOND`: coupon grants per second across all workers, enforced by the
   * Temporal server on the coupon-grants task queue (the coupons service's capacity, not one worker's).
   */
  couponGrantRatePerSecond: number;
  /**
   * `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL of an OTLP/HTTP collector (e.g. Jaeger's
   * http://127.0.0.1:4318); traces go to `<url>/v1/traces`. Unset: nothing is exported.
   */
  otlpEndpoint: string | undefined;
  /** `WORKER_METRICS_ADDRESS`: host:port where the worker serves Prometheus `/metrics`. */
  workerMetricsAddress: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return value;
}

/** `{ [key]: value }` when the variable is set, `{}` otherwise (so the default applies). */
function optionalInt<K extends string>(env: NodeJS.ProcessEnv, name: string, key: K): Partial<Record<K, number>> {
  if (env[name] === undefined || env[name] === '') return {};
  return { [key]: int(env, name, 0) } as Partial<Record<K, number>>;
}

export const DEFAULT_TEMPORAL_PORT = 7233;
/** Shared by the simulator (signing) and the API (verifying) so the stack works out of the box. */
const DEV_WEBHOOK_SECRET = 'whsec_dev_secret';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const servicePorts = {
    orders: int(env, 'ORDERS_PORT', 4101),
    inventory: int(env, 'INVENTORY_PORT', 4102),
    coupons: int(env, 'COUPONS_PORT', 4103),
    loyalty: int(env, 'LOYALTY_PORT', 4104),
    payments: int(env, 'PAYMENTS_PORT', 4105),
    psp: int(env, 'PSP_PORT', 4106),
  };
  const local = (port: number) => `http://127.0.0.1:${port}`;
  return {
    databaseUrl: env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/commerce',
    temporal: {
      address: env.TEMPORAL_ADDRESS || undefined,
      namespace: env.TEMPORAL_NAMESPACE || 'default',
      uiUrl: env.TEMPORAL_UI_URL || 'http://127.0.0.1:8233',
    },
    apiPort: int(env, 'API_PORT', 3000),
    servicePorts,
    serviceUrls: {
      orders: env.ORDERS_URL || local(servicePorts.orders),
      inventory: env.INVENTORY_URL || local(servicePorts.inventory),
      coupons: env.COUPONS_URL || local(servicePorts.coupons),
      loyalty: env.LOYALTY_URL || local(servicePorts.loyalty),
      payments: env.PAYMENTS_URL || local(servicePorts.payments),
      psp: env.PSP_URL || local(servicePorts.psp),
    },
    webhook: {
      secrets: (env.PSP_WEBHOOK_SECRETS || DEV_WEBHOOK_SECRET).split(',').map((s) => s.trim()).filter(Boolean),
      toleranceSeconds: int(env, 'PSP_WEBHOOK_TOLERANCE_SECONDS', 300),
    },
    psp: {
      webhookSecret: env.PSP_WEBHOOK_SECRET || DEV_WEBHOOK_SECRET,
      timeoutCardMs: int(env, 'PSP_TIMEOUT_CARD_MS', 30_000),
    },
    reconciliationEvery: env.RECONCILIATION_EVERY || '15 minutes',
    refundPolicy: {
      ...optionalInt(env, 'REFUND_APPROVAL_THRESHOLD_MINOR', 'approvalThresholdMinor'),
      ...optionalInt(env, 'REFUND_ESCALATE_AFTER_MS', 'escalateAfterMs'),
      ...optionalInt(env, 'REFUND_EXPIRE_AFTER_MS', 'expireAfterMs'),
    },
    couponGrantRatePerSecond: int(env, 'COUPON_GRANT_RATE_PER_SECOND', 200),
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    workerMetricsAddress: env.WORKER_METRICS_ADDRESS || '127.0.0.1:9464',
  };
}

/** The environment that points a child process (worker, API) at these service URLs. */
export function serviceUrlEnv(urls: ServiceUrls): Record<string, string> {
  return {
    ORDERS_URL: urls.orders,
    INVENTORY_URL: urls.inventory,
    COUPONS_URL: urls.coupons,
    LOYALTY_URL: urls.loyalty,
    PAYMENTS_URL: urls.payments,
    PSP_URL: urls.psp,
  };
}

/** Address of the Temporal frontend: the configured cluster, or the local dev server. */
export function temporalAddress(config: Config): string {
  return config.temporal.address ?? `127.0.0.1:${DEFAULT_TEMPORAL_PORT}`;
}
