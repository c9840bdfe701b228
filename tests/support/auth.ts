// Tokens for tests: a development issuer on a free port, the API's auth settings that trust it,
// and the header that carries a token.
import { DEFAULT_AUDIENCE, type AuthConfig } from '../../lib/config.ts';
import { startDevIssuer, type DevIssuer } from '../../lib/dev-issuer.ts';

export type { DevIssuer };

export function startTestIssuer(): Promise<DevIssuer> {
  return startDevIssuer({ port: 0, audience: DEFAULT_AUDIENCE });
}

/** What the API is configured with to trust `issuer` (as loadConfig would with AUTH_ISSUER set). */
export function authConfigFor(issuer: DevIssuer, overrides: Partial<AuthConfig> = {}): AuthConfig {
  return {
    issuer: issuer.url,
    audience: issuer.audience,
    jwksUrl: undefined,
    algorithms: ['RS256'],
    rolesClaim: 'roles',
    roleMap: {},
    opsClientId: 'ops-page',
    ...overrides,
  };
}

export { bearer } from '../../services/common/auth.ts';
