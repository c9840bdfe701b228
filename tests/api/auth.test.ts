// Authentication at the API's door (api/auth.ts) against a real local OpenID Connect issuer
// (lib/dev-issuer.ts): which tokens pass, which are refused and how, what an unreachable identity
// provider looks like, the operations page's sign-in (authorization code + PKCE) over HTTP, and
// the `token` command. A tiny app stands in for the API's routes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { SignJWT, decodeProtectedHeader, generateKeyPair } from 'jose';
import { authenticate, createTokenVerifier, principalOf, requirePermission } from '../../api/auth.ts';
import type { AuthConfig } from '../../lib/config.ts';
import { startDevIssuer } from '../../lib/dev-issuer.ts';
import { errorMiddleware } from '../../lib/http-errors.ts';
import { setLogSink } from '../../lib/logger.ts';
import { freePort } from '../../lib/temporal-dev-server.ts';
import { ROLES } from '../../shared/permissions.ts';
import { authConfigFor, bearer, startTestIssuer, type DevIssuer } from '../support/auth.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

const UNAUTHORIZED = { error: { code: 'unauthorized', message: 'a valid bearer token is required' } };

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

interface TinyApi {
  call(headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

/** GET /decide needs refunds:decide (finance) and answers who the caller is. */
async function startTinyApi(auth: AuthConfig): Promise<TinyApi> {
  const app = express();
  app.get('/decide', authenticate(createTokenVerifier(auth)), requirePermission('refunds:decide', 'refunds:intervene'), (_req, res) => {
    const { subject, roles } = principalOf(res);
    res.json({ subject, roles });
  });
  app.use(errorMiddleware(() => {}));
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/decide`;
  return {
    async call(headers = {}) {
      const res = await fetch(url, { headers });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function assertUnauthorized(answer: Answer, why: string): void {
  assert.equal(answer.status, 401, why);
  assert.deepEqual(answer.body, UNAUTHORIZED, `${why}: same answer for every cause`);
  assert.equal(answer.headers.get('www-authenticate'), 'Bearer', why);
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

let issuer: DevIssuer;
let api: TinyApi;
const logLines: string[] = [];
let restoreLogs: () => void;

before(async () => {
  restoreLogs = setLogSink((line) => logLines.push(line));
  issuer = await startTestIssuer();
  api = await startTinyApi(authConfigFor(issuer));
});

after(async () => {
  await api?.close();
  await issuer?.stop();
  restoreLogs?.();
});

describe('bearer tokens', () => {
  test('a request without a token is 401 in the shared error shape with WWW-Authenticate: Bearer', async () => {
    assertUnauthorized(await api.call(), 'no Authorization header');
    assertUnauthorized(await api.call({ authorization: 'Basic Zm9vOmJhcg==' }), 'another scheme');
    assertUnauthorized(await api.call({ authorization: 'Bearer' }), 'a scheme without a token');
  });

  test('a garbage, expired, foreign-key, wrong-issuer or wrong-audience token is 401 with the same answer', async () => {
    const valid = await issuer.tokenFor('finance', 'fin-fay');
    const other = await startTestIssuer();
    try {
      const { kid } = decodeProtectedHeader(valid);
      const { privateKey } = await generateKeyPair('RS256');
      const claims = { sub: 'fin-fay', roles: ['finance'], aud: issuer.audience, iss: issuer.url };
      const cases: Record<string, string> = {
        garbage: 'not-a-jwt',
        'three dots of nothing': 'a.b.c',
        truncated: valid.slice(0, -10),
        expired: await issuer.tokenFor('finance', 'fin-fay', { expiresInSeconds: -120 }),
        // another issuer's key, even when it claims to be our issuer
        'signed by another issuer': await other.tokenFor('finance', 'fin-fay', { issuer: issuer.url }),
        // our key id, someone else's key
        'forged with our kid': await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).setIssuedAt().setExpirationTime('1h').sign(privateKey),
        'wrong issuer': await issuer.tokenFor('finance', 'fin-fay', { issuer: 'https://idp.example.com' }),
        'wrong audience': await issuer.tokenFor('finance', 'fin-fay', { audience: 'some-other-api' }),
        'no subject': await issuer.tokenFor('finance', 'fin-fay', { claims: { sub: undefined } }),
      };
      for (const [why, token] of Object.entries(cases)) assertUnauthorized(await api.call(bearer(token)), why);
    } finally {
      await other.stop();
    }
  });

  test('alg none and HS256 (keyed with our public key) are refused: algorithms are pinned', async () => {
    const { kid } = decodeProtectedHeader(await issuer.tokenFor('finance', 'fin-fay'));
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: 'fin-fay', roles: ['finance'], aud: issuer.audience, iss: issuer.url, iat: now, exp: now + 600 };
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
    const jwks = (await (await fetch(`${issuer.url}/jwks`)).json()) as { keys: unknown[] };
    const hmac = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid })
      .sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0])));
    assertUnauthorized(await api.call(bearer(unsigned)), 'alg none');
    assertUnauthorized(await api.call(bearer(hmac)), 'HS256');
  });

  test('the reason for a refusal is logged, the token never is', async () => {
    const expired = await issuer.tokenFor('finance', 'fin-fay', { expiresInSeconds: -120 });
    const from = logLines.length;
    await api.call(bearer(expired));
    const lines = logLines.slice(from).map((line) => JSON.parse(line) as Record<string, unknown>);
    const refusal = lines.find((line) => line.msg === 'bearer token refused');
    assert.ok(refusal, 'a refusal is logged');
    assert.match(String(refusal.reason), /ERR_JWT_EXPIRED/);
    assert.ok(!logLines.slice(from).some((line) => line.includes(expired.split('.')[2]!)), 'no token in the logs');
  });

  test('a valid token without the permission is 403 forbidden', async () => {
    const answer = await api.call(bearer(await issuer.tokenFor('support', 'sup-sam')));
    assert.equal(answer.status, 403);
    assert.deepEqual(answer.body, { error: { code: 'forbidden', message: 'this action is not permitted' } });
    const noRoles = await api.call(bearer(await issuer.tokenFor([], 'nobody')));
    assert.equal(noRoles.status, 403);
  });

  test('a valid token with the role passes and the handler sees its subject and roles', async () => {
    const answer = await api.call(bearer(await issuer.tokenFor(['support', 'finance'], 'fin-fay')));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { subject: 'fin-fay', roles: ['support', 'finance'] });
  });
});

describe('role mapping', () => {
  test("the identity provider's role names map to ours; unknown names are ignored", async () => {
    const mapped = await startTinyApi(authConfigFor(issuer, { roleMap: { 'shop-finance': 'finance' } }));
    try {
      const token = await issuer.tokenFor([], 'fin-fay', { claims: { roles: ['shop-finance', 'admin'] } });
      assert.deepEqual((await mapped.call(bearer(token))).body, { subject: 'fin-fay', roles: ['finance'] });
      // without the map the same token has no role we know
      assert.equal((await api.call(bearer(token))).status, 403);
    } finally {
      await mapped.close();
    }
  });

  test('roles are read from a dotted claim path (Keycloak realm_access.roles) and from scope words', async () => {
    const keycloakLike = await startTinyApi(
      authConfigFor(issuer, { rolesClaim: 'realm_access.roles', roleMap: { 'shop-finance': 'finance', 'api.support': 'support' } }),
    );
    try {
      const token = await issuer.tokenFor([], 'fin-fay', {
        scope: 'openid api.support',
        claims: { roles: undefined, realm_access: { roles: ['offline_access', 'shop-finance'] } },
      });
      assert.deepEqual((await keycloakLike.call(bearer(token))).body, { subject: 'fin-fay', roles: ['finance', 'support'] });
      const spaceSeparated = await issuer.tokenFor([], 'fin-fay', { claims: { realm_access: { roles: 'shop-finance' } } });
      assert.deepEqual((await keycloakLike.call(bearer(spaceSeparated))).body, { subject: 'fin-fay', roles: ['finance'] });
    } finally {
      await keycloakLike.close();
    }
  });
});

describe('identity provider unavailable', () => {
  test('503 identity_provider_unavailable while it is down; tokens verify once it is up (discovery is retried)', async () => {
    const port = await freePort();
    const audience = issuer.audience;
    const url = `http://127.0.0.1:${port}`;
    // the API starts before its identity provider
    const early = await startTinyApi({ ...authConfigFor(issuer), issuer: url });
    let late: DevIssuer | undefined;
    try {
      const aToken = await issuer.tokenFor('finance', 'fin-fay', { issuer: url });
      const down = await early.call(bearer(aToken));
      assert.equal(down.status, 503);
      assert.equal(down.body.error.code, 'identity_provider_unavailable');
      assert.match(down.body.error.message, /identity provider/);
      // a token that cannot be a JWT is refused without asking anyone
      assertUnauthorized(await early.call(bearer('garbage')), 'garbage while the provider is down');

      late = await startDevIssuer({ port, audience });
      const up = await early.call(bearer(await late.tokenFor('finance', 'fin-fay')));
      assert.equal(up.status, 200);
      assert.equal(up.body.subject, 'fin-fay');
    } finally {
      await late?.stop();
      await early.close();
    }
  });

  test('503 when the configured JWKS URL does not answer', async () => {
    const direct = await startTinyApi(authConfigFor(issuer, { jwksUrl: `http://127.0.0.1:${await freePort()}/jwks` }));
    try {
      const answer = await direct.call(bearer(await issuer.tokenFor('finance', 'fin-fay')));
      assert.equal(answer.status, 503);
      assert.equal(answer.body.error.code, 'identity_provider_unavailable');
    } finally {
      await direct.close();
    }
  });
});

describe('operations page sign-in: authorization code with PKCE', () => {
  const redirectUri = 'http://127.0.0.1:3000/ops';
  const verifier = () => randomBytes(32).toString('base64url');
  const challengeOf = (v: string) => createHash('sha256').update(v).digest('base64url');

  function authorizeUrl(params: Record<string, string>): string {
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: 'ops-page',
      redirect_uri: redirectUri,
      state: 'state-123',
      ...params,
    });
    return `${issuer.url}/authorize?${query}`;
  }

  async function signIn(codeVerifier: string, extra: string): Promise<URL> {
    const res = await fetch(`${authorizeUrl({ code_challenge: challengeOf(codeVerifier), code_challenge_method: 'S256' })}&${extra}`, {
      redirect: 'manual',
    });
    assert.equal(res.status, 302, await res.text());
    return new URL(res.headers.get('location')!);
  }

  async function exchange(fields: Record<string, string>): Promise<{ status: number; body: any }> {
    const { token_endpoint: endpoint } = (await (await fetch(`${issuer.url}/.well-known/openid-configuration`)).json()) as {
      token_endpoint: string;
    };
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'ops-page', redirect_uri: redirectUri, ...fields }),
    });
    return { status: res.status, body: await res.json() };
  }

  test('without login_hint the issuer answers a sign-in page that re-submits the same request', async () => {
    const res = await fetch(authorizeUrl({ code_challenge: challengeOf(verifier()), code_challenge_method: 'S256' }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /<input id="subject" name="login_hint"/);
    for (const role of ROLES) assert.match(html, new RegExp(`<input type="checkbox" name="role" value="${role}"`));
    assert.match(html, /<button id="sign-in" type="submit">/);
    assert.match(html, /<input type="hidden" name="state" value="state-123">/);
    assert.match(html, /<input type="hidden" name="code_challenge_method" value="S256">/);
    assert.doesNotMatch(html, /(src|href)="http/, 'no external assets');
  });

  test('code → token with the right verifier gives an access token for that subject and those roles', async () => {
    const codeVerifier = verifier();
    // what the sign-in form sends: one `role` per ticked box
    const redirect = await signIn(codeVerifier, 'login_hint=fin-fay&role=finance&role=support');
    assert.equal(redirect.origin + redirect.pathname, redirectUri);
    assert.equal(redirect.searchParams.get('state'), 'state-123');
    const code = redirect.searchParams.get('code')!;
    const answer = await exchange({ code, code_verifier: codeVerifier });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.refresh_token, undefined, 'no refresh token is offered');
    const principal = await createTokenVerifier(authConfigFor(issuer)).verify(answer.body.access_token);
    assert.equal(principal.subject, 'fin-fay');
    assert.deepEqual(principal.roles, ['finance', 'support']);
    assert.ok(principal.permissions.has('refunds:decide'));
    // a code is good for one exchange
    assert.equal((await exchange({ code, code_verifier: codeVerifier })).status, 400);
  });

  test('a comma-separated roles parameter works too', async () => {
    const codeVerifier = verifier();
    const code = (await signIn(codeVerifier, 'login_hint=ops-olga&roles=operations,support')).searchParams.get('code')!;
    const answer = await exchange({ code, code_verifier: codeVerifier });
    const principal = await createTokenVerifier(authConfigFor(issuer)).verify(answer.body.access_token);
    assert.deepEqual([principal.subject, principal.roles], ['ops-olga', ['operations', 'support']]);
  });

  test('a wrong or missing code_verifier is refused and burns the code', async () => {
    const codeVerifier = verifier();
    const wrong = (await signIn(codeVerifier, 'login_hint=fin-fay&role=finance')).searchParams.get('code')!;
    const refused = await exchange({ code: wrong, code_verifier: verifier() });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.access_token, undefined);
    assert.equal((await exchange({ code: wrong, code_verifier: codeVerifier })).status, 400, 'the code is used up');

    const missing = (await signIn(codeVerifier, 'login_hint=fin-fay&role=finance')).searchParams.get('code')!;
    const noVerifier = await exchange({ code: missing });
    assert.equal(noVerifier.status, 400);
    assert.equal(noVerifier.body.access_token, undefined);
    assert.equal((await exchange({ code: 'made-up', code_verifier: codeVerifier })).status, 400, 'an unknown code');
  });

  test('PKCE is not optional: no challenge, or a plain one, is refused at /authorize', async () => {
    const requests: Record<string, string>[] = [{}, { code_challenge: challengeOf(verifier()), code_challenge_method: 'plain' }];
    for (const params of requests) {
      const res = await fetch(`${authorizeUrl(params)}&login_hint=fin-fay&role=finance`, { redirect: 'manual' });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    }
  });

  test('an unknown role or an empty subject re-shows the sign-in page instead of issuing a code', async () => {
    const challenge = { code_challenge: challengeOf(verifier()), code_challenge_method: 'S256' };
    const unknownRole = await fetch(`${authorizeUrl(challenge)}&login_hint=fin-fay&role=admin`, { redirect: 'manual' });
    assert.equal(unknownRole.status, 400);
    assert.match(await unknownRole.text(), /unknown role admin/);
    const noSubject = await fetch(`${authorizeUrl(challenge)}&login_hint=&role=finance`, { redirect: 'manual' });
    assert.equal(noSubject.status, 400);
    assert.match(await noSubject.text(), /id="sign-in"/);
  });

  test('other grants (password, refresh_token) are refused', async () => {
    for (const grant of ['password', 'refresh_token']) {
      const res = await fetch(`${issuer.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: grant, username: 'x', password: 'y', refresh_token: 'z' }),
      });
      assert.equal(res.status, 400, grant);
    }
  });
});

describe('the token command', () => {
  const token = (args: string[], issuerUrl: string) =>
    run(process.execPath, ['--import', 'tsx', 'scripts/token.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, AUTH_ISSUER: issuerUrl },
    });

  test('prints just an access token for the roles and subject, which the API accepts', async () => {
    const { stdout } = await token(['finance,support', 'fin-fay'], issuer.url);
    assert.match(stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const principal = await createTokenVerifier(authConfigFor(issuer)).verify(stdout.trim());
    assert.equal(principal.subject, 'fin-fay');
    assert.deepEqual(principal.roles, ['finance', 'support']);
    assert.equal((await api.call(bearer(stdout.trim()))).status, 200);
  });

  test('an unknown role fails with the list of roles', async () => {
    await assert.rejects(token(['admin', 'fin-fay'], issuer.url), (err: { code: number; stdout: string; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.equal(err.stdout, '');
      assert.match(err.stderr, /unknown role admin; roles are customer, support, finance, marketing, operations/);
      return true;
    });
  });

  test('no running issuer fails with "start bin/stack first"', async () => {
    await assert.rejects(token(['finance', 'fin-fay'], `http://127.0.0.1:${await freePort()}`), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /start bin\/stack first/);
      return true;
    });
  });
});
