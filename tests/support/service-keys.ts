// The credentials every test stack runs with: not the development defaults, so a caller that
// forgot to pass them on (and fell back to the dev key) fails loudly instead of passing by luck.
import type { ServiceCredentials } from '../../activities/http.ts';
import type { ServiceUrls } from '../../lib/config.ts';

/** The services accept both: the first is current, the second the one being rotated out. */
export const TEST_SERVICE_KEYS = ['svc_test_current', 'svc_test_previous'] as const;
/** The simulator's secret API keys. */
export const TEST_PSP_API_KEYS = ['sk_test_stack'] as const;

/** What the tests' workers send. */
export const TEST_CREDENTIALS: ServiceCredentials = { serviceKey: TEST_SERVICE_KEYS[0], pspApiKey: TEST_PSP_API_KEYS[0] };

/** The `authorization` header for calling `service` directly: the simulator takes its own API key. */
export function authFor(service: keyof ServiceUrls): { authorization: string } {
  return { authorization: `Bearer ${service === 'psp' ? TEST_CREDENTIALS.pspApiKey : TEST_CREDENTIALS.serviceKey}` };
}

/** The environment that gives a child process (a worker) the same keys. */
export const TEST_KEYS_ENV = {
  SERVICE_API_KEYS: TEST_SERVICE_KEYS.join(','),
  PSP_API_KEYS: TEST_PSP_API_KEYS.join(','),
};
