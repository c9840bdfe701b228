// What the operations page needs to sign in by itself: GET /ops/config.json names the identity
// provider's endpoints (from its discovery document, so any provider works, whatever its paths),
// the public client the page is registered as, and the audience its tokens must carry. Public:
// the page reads it before anyone has signed in, and nothing in it is secret.
import { z } from 'zod';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/logger.ts';
import { identityProviderUnavailable } from '../auth.ts';
import type { RouteDeclarer } from '../route.ts';

const log = createLogger('ops-page');

/** Who the page signs in as, and for which API. */
export interface OpsSignInClient {
  /** AUTH_CLIENT_ID: a public client (no secret) allowed the authorization code flow with PKCE. */
  clientId: string;
  /** AUTH_AUDIENCE. */
  audience: string;
}

export interface OpsSignInOptions extends Partial<OpsSignInClient> {
  /** AUTH_ISSUER. */
  issuer: string;
}

export const opsSignInSettingsSchema = z.object({
  issuer: z.string(),
  authorizationEndpoint: z.string(),
  tokenEndpoint: z.string(),
  clientId: z.string(),
  audience: z.string(),
});
export type OpsSignInSettings = z.output<typeof opsSignInSettingsSchema>;

const DISCOVERY_TIMEOUT_MS = 5_000;

/**
 * The settings, from the provider's discovery document. Read on first use (the API may start
 * before the provider) and kept once read; a failed read is tried again on the next request.
 */
export function opsSignInSettings(options: OpsSignInOptions): () => Promise<OpsSignInSettings> {
  // the configuration's own defaults (the development issuer's client and audience), not a second copy
  const defaults = loadConfig({}).auth;
  const client = { clientId: options.clientId ?? defaults.opsClientId, audience: options.audience ?? defaults.audience };
  let settings: Promise<OpsSignInSettings> | undefined;
  return () => {
    settings ??= discover(options.issuer, client).catch((err: unknown) => {
      settings = undefined;
      throw err;
    });
    return settings;
  };
}

async function discover(issuer: string, client: OpsSignInClient): Promise<OpsSignInSettings> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const document = z
    .object({ authorization_endpoint: z.string().url(), token_endpoint: z.string().url() })
    .parse(await response.json());
  return {
    issuer,
    authorizationEndpoint: document.authorization_endpoint,
    tokenEndpoint: document.token_endpoint,
    ...client,
  };
}

/** Declares GET /ops/config.json on `route`. */
export function opsConfigRoute(route: RouteDeclarer, options: OpsSignInOptions): void {
  const settings = opsSignInSettings(options);
  route(
    {
      method: 'get',
      path: '/ops/config.json',
      summary: "The operations page's sign-in settings: identity provider endpoints, client id and audience",
      tag: 'operations',
      permissions: 'public',
      responses: { 200: { description: 'Where and as which client the page signs in', schema: opsSignInSettingsSchema } },
    },
    async ({ res }) => {
      const body = await settings().catch((err: unknown) => {
        log.warn('cannot read the identity provider discovery document', { issuer: options.issuer, err });
        throw identityProviderUnavailable();
      });
      res.setHeader('Cache-Control', 'no-cache');
      res.json(body);
    },
  );
}
