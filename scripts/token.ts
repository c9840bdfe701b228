// `npm run -s token -- <role>[,<role>] <subject>`: prints an access token for that subject and
// those roles, from the development issuer bin/stack runs (lib/dev-issuer.ts), so a curl example
// reads `TOKEN=$(npm run -s token -- finance fin-fay)`. Only the token goes to stdout.
import { loadConfig } from '../lib/config.ts';
import { ROLES, isRole } from '../shared/permissions.ts';

const TIMEOUT_MS = 5_000;

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(1);
}

const [roleList, subject, ...extra] = process.argv.slice(2);
if (!roleList || !subject || extra.length > 0) {
  fail(`usage: npm run -s token -- <role>[,<role>] <subject>\n  roles: ${ROLES.join(', ')}`);
}
const roles = roleList.split(',').map((r) => r.trim()).filter(Boolean);
const unknown = roles.filter((r) => !isRole(r));
if (roles.length === 0 || unknown.length > 0) {
  fail(`unknown role ${unknown.join(', ') || '(none given)'}; roles are ${ROLES.join(', ')}`);
}

const { issuer } = loadConfig().auth;
const notRunning = `no development issuer answers at ${issuer}: start bin/stack first (this command needs its development issuer, not an AUTH_ISSUER of your own)`;

async function tokenEndpoint(): Promise<string> {
  const response = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch(() => fail(notRunning));
  if (!response.ok) fail(notRunning);
  const { token_endpoint: endpoint } = (await response.json()) as { token_endpoint?: unknown };
  if (typeof endpoint !== 'string') fail(`${issuer} names no token endpoint`);
  return endpoint;
}

const response = await fetch(await tokenEndpoint(), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  // `subject` and `roles` are the development issuer's own extension of client credentials
  body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'token-command', subject, roles: roles.join(',') }),
  signal: AbortSignal.timeout(TIMEOUT_MS),
}).catch(() => fail(notRunning));
const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown; error_description?: unknown };
if (!response.ok || typeof body.access_token !== 'string') {
  fail(`${issuer} refused: ${String(body.error_description ?? body.error ?? response.status)}`);
}
process.stdout.write(`${body.access_token}\n`);
