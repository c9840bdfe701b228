// The local OpenID Connect issuer that `bin/stack` and the tests run: oauth2-mock-server
// (discovery, JWKS, token and authorize endpoints, PKCE checking) with a fresh RS256 key per
// start, plus what our API needs from an identity provider: access tokens for our audience that
// carry a subject and roles.
//
// THIS IS A DEVELOPMENT ISSUER. Anyone who reaches it can get a token for any subject and role:
// the token endpoint takes `subject` and `roles` as form fields (client credentials, no client
// secret), and the sign-in page trusts whatever name is typed. Deployments point AUTH_ISSUER at
// their own identity provider; bin/stack starts this one only when AUTH_ISSUER is unset.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import express, { type Response } from 'express';
import { OAuth2Issuer, OAuth2Service, type MutableRedirectUri, type MutableResponse, type MutableToken } from 'oauth2-mock-server';
import { ROLE_PERMISSIONS, ROLES, isRole, type Role } from '../shared/permissions.ts';

export interface DevIssuerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** The `aud` of every access token it issues (the API's AUTH_AUDIENCE). */
  audience: string;
}

/** Overrides for tokenFor, mostly to make tokens the API must refuse. */
export interface TokenOptions {
  /** Default one hour; negative makes an expired token. */
  expiresInSeconds?: number;
  audience?: string | string[];
  /** Default the issuer's own URL. */
  issuer?: string;
  scope?: string;
  /** Extra claims, applied last (e.g. `{ realm_access: { roles: [...] } }`). */
  claims?: Record<string, unknown>;
}

export interface DevIssuer {
  /** The issuer URL: the `iss` claim and the base of `/.well-known/openid-configuration`. */
  url: string;
  audience: string;
  /** A signed access token, made in-process (no HTTP). */
  tokenFor(role: Role | Role[], subject: string, opts?: TokenOptions): Promise<string>;
  stop(): Promise<void>;
}

const TOKEN_TTL_SECONDS = 3600;
/** An authorization code is exchanged within seconds by the page that asked for it. */
const CODE_TTL_MS = 5 * 60_000;
const DEFAULT_SCOPE = 'openid profile';

/** Who a token will be for, once the request asking for it has been checked. */
interface Grant {
  subject: string;
  roles: Role[];
  scope: string;
}

/** What a sign-in decided, kept under the authorization code until the code is exchanged. */
interface CodeGrant extends Grant {
  clientId: string;
  redirectUri: string;
  expiresAt: number;
}

export async function startDevIssuer(options: DevIssuerOptions): Promise<DevIssuer> {
  const host = options.host ?? '127.0.0.1';
  const { audience } = options;
  const issuer = new OAuth2Issuer();
  await issuer.keys.generate('RS256');
  const service = new OAuth2Service(issuer);

  // Requests are handed from our checks to the mock server's handlers (the same request object
  // reaches its hooks), so what we decided travels with the request.
  const signIns = new WeakMap<IncomingMessage, Omit<CodeGrant, 'expiresAt'>>();
  const tokenGrants = new WeakMap<IncomingMessage, Grant>();
  const codes = new Map<string, CodeGrant>();

  service.on('beforeAuthorizeRedirect', (redirect: MutableRedirectUri, req: IncomingMessage) => {
    const signIn = signIns.get(req);
    const code = redirect.url.searchParams.get('code');
    if (!signIn || !code) return;
    const now = Date.now();
    for (const [old, grant] of codes) if (grant.expiresAt < now) codes.delete(old);
    codes.set(code, { ...signIn, expiresAt: now + CODE_TTL_MS });
  });

  service.on('beforeTokenSigning', (token: MutableToken, req: IncomingMessage) => {
    const grant = tokenGrants.get(req);
    // every token request passes our checks first; one that did not must not get a token
    if (!grant) throw new Error('token request reached signing without a checked grant');
    // The mock signs an id_token too for the code flow; it is the one without a `scope`.
    // Its audience stays the client; only its subject is ours.
    if (!('scope' in token.payload)) {
      token.payload.sub = grant.subject;
      return;
    }
    Object.assign(token.payload, accessClaims(grant, audience));
  });

  service.on('beforeResponse', (response: MutableResponse) => {
    // refresh grants are not honoured here: do not hand out a refresh token that looks usable
    if (typeof response.body === 'object') delete response.body.refresh_token;
  });

  const app = express();
  app.disable('x-powered-by');

  app.get('/authorize', (req, res, next) => {
    const query = new URL(req.originalUrl, 'http://dev-issuer').searchParams;
    const problem = authorizeRequestProblem(query);
    if (problem) {
      res.status(400).json({ error: 'invalid_request', error_description: problem });
      return;
    }
    const subject = query.get('login_hint');
    if (subject === null) {
      sendSignInPage(res, 200, query);
      return;
    }
    const roles = [...query.getAll('role'), ...(query.get('roles') ?? '').split(',')].map((r) => r.trim()).filter(Boolean);
    const unknown = roles.filter((r) => !isRole(r));
    const refusal =
      subject.trim() === '' ? 'enter a subject'
      : roles.length === 0 ? 'choose at least one role'
      : unknown.length > 0 ? `unknown role ${unknown.join(', ')}`
      : undefined;
    if (refusal) {
      sendSignInPage(res, 400, query, refusal);
      return;
    }
    signIns.set(req, {
      subject: subject.trim(),
      roles: [...new Set(roles as Role[])],
      scope: query.get('scope') ?? DEFAULT_SCOPE,
      clientId: query.get('client_id')!,
      redirectUri: query.get('redirect_uri')!,
    });
    next(); // the mock server issues the code and redirects
  });

  app.post('/token', express.urlencoded({ extended: false }), express.json(), (req, res, next) => {
    // the operations page exchanges its code from the API's origin and must be able to read refusals
    res.set('Access-Control-Allow-Origin', '*');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const refuse = (error: string, description: string) => {
      res.status(400).json({ error, error_description: description });
    };
    if (body.grant_type === 'client_credentials') {
      // development only: the caller names the subject and roles it wants (scripts/token.ts)
      const subject = text(body.subject) ?? text(body.client_id);
      const roles = (text(body.roles) ?? '').split(',').map((r) => r.trim()).filter(Boolean);
      const unknown = roles.filter((r) => !isRole(r));
      if (!subject) return refuse('invalid_request', 'subject (or client_id) is required');
      if (unknown.length > 0) return refuse('invalid_scope', `unknown role ${unknown.join(', ')}; roles are ${ROLES.join(', ')}`);
      tokenGrants.set(req, { subject, roles: [...new Set(roles as Role[])], scope: text(body.scope) ?? DEFAULT_SCOPE });
    } else if (body.grant_type === 'authorization_code') {
      const code = text(body.code);
      const grant = code === undefined ? undefined : codes.get(code);
      if (code !== undefined) codes.delete(code); // a code is good for one exchange, whatever its outcome
      if (!grant || grant.expiresAt < Date.now()) return refuse('invalid_grant', 'unknown or expired authorization code');
      // PKCE is not optional: the mock server checks the verifier against the challenge only when one is sent
      if (!text(body.code_verifier)) return refuse('invalid_request', 'code_verifier is required');
      if (body.client_id !== grant.clientId) return refuse('invalid_grant', 'client_id does not match the authorization request');
      if (body.redirect_uri !== grant.redirectUri) return refuse('invalid_grant', 'redirect_uri does not match the authorization request');
      tokenGrants.set(req, grant);
    } else {
      return refuse('unsupported_grant_type', 'this issuer supports client_credentials and authorization_code with PKCE');
    }
    next();
  });

  app.use(service.requestHandler as express.RequestHandler);

  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // the mock would name itself http://localhost:…; the issuer must be the URL clients are configured with
  issuer.url = url;

  return {
    url,
    audience,
    async tokenFor(role, subject, opts = {}) {
      const roles = Array.isArray(role) ? role : [role];
      return issuer.buildToken({
        expiresIn: opts.expiresInSeconds ?? TOKEN_TTL_SECONDS,
        scopesOrTransform: (_header, payload) => {
          Object.assign(
            payload,
            accessClaims({ subject, roles, scope: opts.scope ?? DEFAULT_SCOPE }, opts.audience ?? audience),
            opts.issuer === undefined ? {} : { iss: opts.issuer },
            opts.claims ?? {},
          );
        },
      });
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function accessClaims(grant: Grant, audience: string | string[]): Record<string, unknown> {
  return { sub: grant.subject, aud: audience, roles: grant.roles, scope: grant.scope };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The authorization request must be a code request with an S256 PKCE challenge. */
function authorizeRequestProblem(query: URLSearchParams): string | undefined {
  if (query.get('response_type') !== 'code') return 'response_type must be code';
  if (!query.get('client_id')) return 'client_id is required';
  const redirectUri = query.get('redirect_uri') ?? '';
  if (!URL.canParse(redirectUri) || !/^https?:$/.test(new URL(redirectUri).protocol)) return 'redirect_uri must be an http(s) URL';
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(query.get('code_challenge') ?? '')) return 'code_challenge is required (PKCE)';
  if (query.get('code_challenge_method') !== 'S256') return 'code_challenge_method must be S256';
  return undefined;
}

const SIGN_IN_FIELDS = new Set(['login_hint', 'roles', 'role']);

/**
 * The sign-in page: a subject and roles, sent back to /authorize with the same query plus
 * `login_hint` and `role` (one per ticked box). Plain HTML so it works without scripts.
 */
function sendSignInPage(res: Response, status: number, query: URLSearchParams, message?: string): void {
  const hidden = [...query]
    .filter(([name]) => !SIGN_IN_FIELDS.has(name))
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n      ');
  const chosen = new Set([...query.getAll('role'), ...(query.get('roles') ?? '').split(',')]);
  const roleBoxes = ROLES.map(
    (role) => `<label><input type="checkbox" name="role" value="${role}" id="role-${role}"${chosen.has(role) ? ' checked' : ''}>
        <b>${role}</b> <small>${ROLE_PERMISSIONS[role].join(', ')}</small></label>`,
  ).join('\n      ');
  res
    .status(status)
    .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
    .type('html').send(`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sign in (development issuer)</title>
  <style>
    body { font: 15px system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
    label { display: block; margin: .4rem 0; }
    small { color: #666; }
    .error { color: #b00020; }
    .note { background: #fff4ce; padding: .5rem .8rem; }
  </style>
</head>
<body>
  <h1>Sign in</h1>
  <p class="note">Development identity provider: anyone can sign in as anyone with any role.</p>
  ${message ? `<p class="error" id="error">${escapeHtml(message)}</p>` : ''}
  <form method="get" action="/authorize">
      ${hidden}
    <label for="subject">Subject (your account or customer id)</label>
    <input id="subject" name="login_hint" required autofocus value="${escapeHtml(query.get('login_hint') ?? '')}">
    <fieldset>
      <legend>Roles</legend>
      ${roleBoxes}
    </fieldset>
    <button id="sign-in" type="submit">Sign in</button>
  </form>
</body>
</html>
`);
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

