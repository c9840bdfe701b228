// Who is calling: the one module that knows about tokens. An API caller presents an OAuth 2.0 /
// OpenID Connect access token (a JWT); we verify it against the identity provider's published keys
// with issuer, audience and algorithms pinned, and turn it into a Principal (subject, roles,
// permissions). Routes then name the permissions they need (shared/permissions.ts).
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { AuthConfig } from '../lib/config.ts';
import { HttpError, unauthorized, unavailable } from '../lib/http-errors.ts';
import { createLogger } from '../lib/logger.ts';
import { isRole, permissionsOf, type Permission, type Principal, type Role } from '../shared/permissions.ts';

const log = createLogger('auth');

export interface TokenVerifier {
  /** The caller behind `token`; throws a 401 HttpError for any bad token, 503 when the identity provider cannot be reached. */
  verify(token: string): Promise<Principal>;
}

/** How long we wait for the identity provider's discovery document (jose bounds the JWKS fetch itself, 5 s). */
const DISCOVERY_TIMEOUT_MS = 5_000;

// Key-lookup outcomes that are the token's fault (a kid the provider never published), not the provider's.
const TOKEN_KEY_ERRORS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS']);

/** One answer for every bad token, so a caller cannot probe which check failed. */
const badToken = () => unauthorized('a valid bearer token is required');

export function identityProviderUnavailable(): HttpError {
  return unavailable('identity_provider_unavailable', 'the identity provider is unavailable; retry later');
}

/** Raised inside key lookup so that verify() can tell "the provider is down" from "the token is bad". */
class KeySourceUnavailable extends Error {}

export function createTokenVerifier(auth: AuthConfig): TokenVerifier {
  const keys = lazyKeySource(auth);
  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: auth.issuer,
          audience: auth.audience,
          algorithms: auth.algorithms,
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (err) {
        if (err instanceof KeySourceUnavailable) {
          log.warn('identity provider unavailable', { issuer: auth.issuer, err: err.cause });
          throw identityProviderUnavailable();
        }
        // the reason is for our logs only; never the token itself
        log.info('bearer token refused', { reason: reasonOf(err) });
        throw badToken();
      }
      if (typeof payload.sub !== 'string' || payload.sub === '') {
        log.info('bearer token refused', { reason: 'no subject' });
        throw badToken();
      }
      const roles = rolesOf(payload, auth);
      return { subject: payload.sub, roles, permissions: permissionsOf(roles) };
    },
  };
}

/**
 * The provider's key set, found on first use (AUTH_JWKS_URL, or the discovery document's
 * `jwks_uri`) so the API starts while the provider is still down; a failed discovery is tried
 * again on the next request. jose caches the keys and refetches on an unknown `kid` (with a cooldown).
 */
function lazyKeySource(auth: AuthConfig): JWTVerifyGetKey {
  let keySet: Promise<JWTVerifyGetKey> | undefined;
  const load = async (): Promise<JWTVerifyGetKey> => {
    const url = auth.jwksUrl ?? (await discoverJwksUri(auth.issuer));
    return createRemoteJWKSet(new URL(url));
  };
  return async (header, token) => {
    keySet ??= load().catch((err: unknown) => {
      keySet = undefined;
      throw err;
    });
    try {
      return await (await keySet)(header, token);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && TOKEN_KEY_ERRORS.has(code)) throw err;
      throw new KeySourceUnavailable('identity provider unavailable', { cause: err });
    }
  };
}

async function discoverJwksUri(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (typeof document.jwks_uri !== 'string') throw new Error(`${url} names no jwks_uri`);
  // every token would then fail the issuer check: say why once, where an operator looks
  if (document.issuer !== issuer) log.warn('discovery names another issuer than AUTH_ISSUER', { configured: issuer, discovered: document.issuer });
  return document.jwks_uri;
}

function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return [e?.code, e?.message].filter((part) => typeof part === 'string').join(': ') || 'unknown';
}

/** Our roles in the token: the configured roles claim and the `scope` words, mapped by AUTH_ROLE_MAP. */
function rolesOf(payload: JWTPayload, auth: AuthConfig): Role[] {
  const names = [...words(claimAt(payload, auth.rolesClaim)), ...words(payload.scope)];
  const roles = new Set<Role>();
  for (const name of names) {
    const mapped = auth.roleMap[name] ?? name;
    if (isRole(mapped)) roles.add(mapped);
  }
  return [...roles];
}

function claimAt(payload: JWTPayload, dottedPath: string): unknown {
  let value: unknown = payload;
  for (const key of dottedPath.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A claim holding names: an array of strings or one space-separated string. */
function words(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Verifies the request's bearer token and keeps the caller in `res.locals.principal`. */
export function authenticate(verifier: TokenVerifier): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const token = BEARER.exec(req.get('authorization') ?? '')?.[1];
    if (token === undefined) {
      log.info('bearer token refused', { reason: 'no bearer token in the Authorization header' });
      throw badToken();
    }
    res.locals.principal = await verifier.verify(token);
    next();
  };
}

/** Lets the request through when the caller holds any one of `anyOf`; 403 otherwise. */
export function requirePermission(...anyOf: Permission[]): RequestHandler {
  if (anyOf.length === 0) throw new Error('requirePermission needs at least one permission');
  return (_req, res, next) => {
    const principal = principalOf(res);
    if (!anyOf.some((permission) => hasPermission(principal, permission))) {
      throw new HttpError(403, 'forbidden', 'this action is not permitted');
    }
    next();
  };
}

/** The caller that authenticate() verified; a route that forgot it fails loudly. */
export function principalOf(res: Response): Principal {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new Error('no principal: authenticate() did not run for this route');
  return principal;
}

export function hasPermission(principal: Principal, permission: Permission): boolean {
  return principal.permissions.has(permission);
}
