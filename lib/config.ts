// The one config loader: every process reads its settings here, from the
// environment, with defaults that work for `bin/stack` on a developer machine.
import { parseKeyRing, type PayloadKeyRing } from './payload-codec.ts';

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
  /** `API_RATE_LIMIT_PER_MINUTE`: requests per minute one client address may make to the API (default 600). */
  apiRateLimitPerMinute: number;
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
  /** `NODE_ENV=production`: development defaults are refused (see requireProductionSettings). */
  production: boolean;
  /** How API callers are authenticated: OAuth 2.0 / OpenID Connect access tokens (JWT). */
  auth: AuthConfig;
  /**
   * `SERVICE_API_KEYS`, comma-separated: the bearer keys the downstream services accept from
   * their callers (workers, the API's catalogue look-ups). The first one is sent; all are
   * accepted, so a key is rotated by adding the new one first, then dropping the old one.
   */
  serviceKeys: string[];
  /** `PSP_API_KEYS`, likewise: the simulator's secret API keys; the payments service sends the first. */
  pspApiKeys: string[];
  /**
   * `FAULT_INJECTION=on`: the services serve `PUT /_faults` and the simulator `PUT /v1/chaos`.
   * Off unless configured: `bin/stack` and the tests turn it on.
   */
  faultInjection: boolean;
  /**
   * `PAYLOAD_ENCRYPTION_KEYS`: `id:base64key,...` (32-byte keys). Every Temporal payload is
   * encrypted with the first and may be decrypted with any (lib/payload-codec.ts): rotate by
   * putting a new key first and keeping the old ones until no run needs them.
   */
  payloadKeys: PayloadKeyRing;
  /**
   * `REQUEST_FINGERPRINT_SECRET`: the HMAC key of the request fingerprints kept in memos, so a
   * fingerprint cannot be reversed by trying candidate requests.
   */
  fingerprintSecret: string;
  /**
   * `CODEC_CORS_ORIGINS`, comma-separated: the Web UI origins allowed to call the codec server
   * (`/codec/*`) from a browser. Default: the origin of TEMPORAL_UI_URL.
   */
  codecCorsOrigins: string[];
}

export interface AuthConfig {
  /** `AUTH_ISSUER`: the identity provider's issuer URL (the `iss` claim, and the base of discovery). */
  issuer: string;
  /** `AUTH_AUDIENCE`: the `aud` every access token must carry. */
  audience: string;
  /** `AUTH_JWKS_URL`: where the signing keys are; unset → the issuer's discovery document says. */
  jwksUrl: string | undefined;
  /** `AUTH_ALGORITHMS`, comma-separated (default RS256): no other `alg` is accepted. */
  algorithms: string[];
  /** `AUTH_ROLES_CLAIM`: dotted path of the claim holding the caller's roles (default `roles`; Keycloak: `realm_access.roles`). */
  rolesClaim: string;
  /**
   * `AUTH_ROLE_MAP`: `idpRole=role,...`, from the identity provider's role or scope names to ours
   * (shared/permissions.ts). Unmapped names that equal one of ours count as that role.
   */
  roleMap: Record<string, string>;
  /** `AUTH_CLIENT_ID`: the public client the operations page signs in with (authorization code + PKCE). */
  opsClientId: string;
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
export const DEV_WEBHOOK_SECRET = 'whsec_dev_secret';
/** Development-only service key and simulator key: refused in production. */
export const DEV_SERVICE_KEY = 'svc_dev_key';
export const DEV_PSP_API_KEY = 'sk_test_dev';
/** The local OpenID Connect issuer `bin/stack` starts (lib/dev-issuer.ts). */
export const DEFAULT_DEV_ISSUER_PORT = 4400;
export const DEFAULT_AUDIENCE = 'commerce-api';
/** Development-only payload key and fingerprint secret: refused in production. */
export const DEV_PAYLOAD_KEY_ID = 'dev';
export const DEV_PAYLOAD_KEYS = `${DEV_PAYLOAD_KEY_ID}:eNTe0zDPttPuQ2uXMfcD+9WX8z+Iu0RM7DZDPvpJtb4=`;
export const DEV_FINGERPRINT_SECRET = 'fp_dev_secret';

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
  const uiUrl = env.TEMPORAL_UI_URL || 'http://127.0.0.1:8233';
  return {
    databaseUrl: env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/commerce',
    temporal: {
      address: env.TEMPORAL_ADDRESS || undefined,
      namespace: env.TEMPORAL_NAMESPACE || 'default',
      uiUrl,
    },
    apiPort: int(env, 'API_PORT', 3000),
    apiRateLimitPerMinute: int(env, 'API_RATE_LIMIT_PER_MINUTE', 600),
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
    production: env.NODE_ENV === 'production',
    auth: {
      issuer: env.AUTH_ISSUER || `http://127.0.0.1:${int(env, 'AUTH_DEV_ISSUER_PORT', DEFAULT_DEV_ISSUER_PORT)}`,
      audience: env.AUTH_AUDIENCE || DEFAULT_AUDIENCE,
      jwksUrl: env.AUTH_JWKS_URL || undefined,
      algorithms: list(env.AUTH_ALGORITHMS || 'RS256'),
      rolesClaim: env.AUTH_ROLES_CLAIM || 'roles',
      roleMap: Object.fromEntries(
        list(env.AUTH_ROLE_MAP || '').map((pair) => {
          const [from, to] = pair.split('=').map((s) => s.trim());
          if (!from || !to) throw new Error(`AUTH_ROLE_MAP entries must be idpRole=role, got "${pair}"`);
          return [from, to];
        }),
      ),
      opsClientId: env.AUTH_CLIENT_ID || 'ops-page',
    },
    serviceKeys: list(env.SERVICE_API_KEYS || DEV_SERVICE_KEY),
    pspApiKeys: list(env.PSP_API_KEYS || DEV_PSP_API_KEY),
    faultInjection: env.FAULT_INJECTION === 'on',
    payloadKeys: parseKeyRing(env.PAYLOAD_ENCRYPTION_KEYS || DEV_PAYLOAD_KEYS),
    fingerprintSecret: env.REQUEST_FINGERPRINT_SECRET || DEV_FINGERPRINT_SECRET,
    codecCorsOrigins: list(env.CODEC_CORS_ORIGINS || new URL(uiUrl).origin),
  };
}

function list(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * The first thing each process's main does: in production, development secrets must not get as
 * far as a port or a connection. Logs requireProductionSettings' refusal and exits 1.
 */
export function exitUnlessProductionReady(role: ProcessRole, logError: (message: string) => void): void {
  try {
    requireProductionSettings(role);
  } catch (err) {
    logError((err as Error).message);
    process.exit(1);
  }
}

/** Which process is starting: each needs its own secrets. */
export type ProcessRole = 'api' | 'services' | 'worker';

/**
 * In production (`NODE_ENV=production`) a process refuses to start on development defaults:
 * every secret and the identity provider must be configured explicitly. Throws one error that
 * names every missing variable; does nothing outside production.
 */
export function requireProductionSettings(role: ProcessRole, env: NodeJS.ProcessEnv = process.env): void {
  if (env.NODE_ENV !== 'production') return;
  const problems: string[] = [];
  const need = (name: string, devValue?: string) => {
    const value = env[name];
    if (value === undefined || value.trim() === '') problems.push(`${name} is not set`);
    else if (devValue !== undefined && list(value).includes(devValue)) problems.push(`${name} holds the development default`);
  };
  if (role === 'api') {
    need('AUTH_ISSUER');
    need('AUTH_AUDIENCE');
    need('PSP_WEBHOOK_SECRETS', DEV_WEBHOOK_SECRET);
    need('SERVICE_API_KEYS', DEV_SERVICE_KEY);
    // the API exchanges card numbers for the provider's tokens before any workflow sees them
    need('PSP_API_KEYS', DEV_PSP_API_KEY);
    need('PAYLOAD_ENCRYPTION_KEYS', DEV_PAYLOAD_KEYS);
    need('REQUEST_FINGERPRINT_SECRET', DEV_FINGERPRINT_SECRET);
  }
  if (role === 'services') {
    need('SERVICE_API_KEYS', DEV_SERVICE_KEY);
    need('PSP_API_KEYS', DEV_PSP_API_KEY);
    need('PSP_WEBHOOK_SECRET', DEV_WEBHOOK_SECRET);
  }
  if (role === 'worker') {
    need('SERVICE_API_KEYS', DEV_SERVICE_KEY);
    // reconciliation reads the provider's settlement report and refunds there
    need('PSP_API_KEYS', DEV_PSP_API_KEY);
    need('PAYLOAD_ENCRYPTION_KEYS', DEV_PAYLOAD_KEYS);
  }
  if (env.FAULT_INJECTION === 'on') problems.push('FAULT_INJECTION=on is for development and tests only');
  if (problems.length > 0) {
    throw new Error(`refusing to start in production (NODE_ENV=production): ${problems.join('; ')}`);
  }
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
