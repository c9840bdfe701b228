// `npm run -s token -- <role>[,<role>] <subject>`: prints an access token for that subject and
// those roles, from the development issuer bin/stack runs (lib/dev-issuer.ts), so a curl example
// reads `TOKEN=$(npm run -s token -- finance fin-fay)`. Only the token goes to stdout.
// Other scripts (the bench) get their tokens the same way through devToken().
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config.ts';
import { ROLES, isRole, type Role } from '../shared/permissions.ts';

const TIMEOUT_MS = 5_000;

/**
 * An access token for `subject` with `roles`, from the development issuer at `issuer` (default
 * the configured AUTH_ISSUER, i.e. the one bin/stack runs). Rejects with a message fit for the
 * user when no development issuer answers there or it refuses.
 */
export async function devToken(roles: readonly Role[], subject: string, issuer = loadConfig().auth.issuer): Promise<string> {
  const notRunning = `no development issuer answers at ${issuer}: start bin/stack first (this command needs its development issuer, not an AUTH_ISSUER of your own)`;
  const unreachable = () => {
    throw new Error(notRunning);
  };

  const discovery = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch(unreachable);
  if (!discovery.ok) unreachable();
  const { token_endpoint: endpoint } = (await discovery.json().catch(unreachable)) as { token_endpoint?: unknown };
  if (typeof endpoint !== 'string') throw new Error(`${issuer} names no token endpoint`);

  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    // `subject` and `roles` are the development issuer's own extension of client credentials
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'token-command', subject, roles: roles.join(',') }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).catch(unreachable);
  const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown; error_description?: unknown };
  if (!response.ok || typeof body.access_token !== 'string') {
    throw new Error(`${issuer} refused: ${String(body.error_description ?? body.error ?? response.status)}`);
  }
  return body.access_token;
}

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [roleList, subject, ...extra] = process.argv.slice(2);
  if (!roleList || !subject || extra.length > 0) {
    fail(`usage: npm run -s token -- <role>[,<role>] <subject>\n  roles: ${ROLES.join(', ')}`);
  }
  const roles = roleList.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !isRole(r));
  if (roles.length === 0 || unknown.length > 0) {
    fail(`unknown role ${unknown.join(', ') || '(none given)'}; roles are ${ROLES.join(', ')}`);
  }
  const token = await devToken(roles as Role[], subject).catch((err: Error) => fail(err.message));
  process.stdout.write(`${token}\n`);
}
