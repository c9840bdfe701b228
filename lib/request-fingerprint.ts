// The fingerprint of the request that started a workflow, kept in its memo so that a repeat under
// the same idempotency key can be told from a different request. Keyed (HMAC) rather than a bare
// hash: anyone who can read a memo could otherwise confirm a guessed request, card number included,
// by hashing candidates.
import { createHmac } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json.ts';

/** The memo field holding the fingerprint of the request that started a checkout or a refund. */
export const REQUEST_FINGERPRINT_MEMO = 'requestHmac';

/**
 * HMAC-SHA256 (hex) of the validated request in canonical JSON, so re-sending it with other
 * whitespace or key order is still the same request.
 */
export function requestFingerprint(secret: string, request: unknown): string {
  return createHmac('sha256', secret).update(canonicalJson(request)).digest('hex');
}
