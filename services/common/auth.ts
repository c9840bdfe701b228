// Service-to-service credentials: every caller of a downstream service (the workers, the API's
// catalogue look-ups, one service calling another) sends `Authorization: Bearer <key>`, and the
// service accepts any key of its configured list (several while a key is rotated). The simulator
// checks its own secret API keys the same way, as a real provider checks a merchant's.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { unauthorized } from '../../lib/http-errors.ts';

/** The header a caller sends with `key`. */
export function bearer(key: string): { authorization: string } {
  return { authorization: `Bearer ${key}` };
}

// Digests have one length whatever the key's, so timingSafeEqual neither throws nor reveals it.
const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** True when `presented` is one of `accepted`, in constant time (every accepted key is compared). */
export function keyMatches(accepted: readonly Buffer[], presented: string): boolean {
  const candidate = digest(presented);
  let match = false;
  for (const key of accepted) match = timingSafeEqual(key, candidate) || match;
  return match;
}

// No detail: whether the key was missing, malformed or wrong helps only an attacker.
const badKey = () => unauthorized('authentication required');

/** Refuses with 401 `unauthorized` any request without `Authorization: Bearer <one of keys>`. */
export function requireBearerKey(keys: readonly string[]): RequestHandler {
  const accepted = keys.filter((key) => key !== '').map(digest);
  if (accepted.length === 0) throw new Error('requireBearerKey: no keys to accept; configure SERVICE_API_KEYS / PSP_API_KEYS');
  return (req, _res, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '');
    if (match && keyMatches(accepted, match[1]!)) return next();
    next(badKey());
  };
}
