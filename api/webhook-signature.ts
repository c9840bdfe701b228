// Verifies the provider's `Psp-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`
// over `"<t>.<raw body>"`. Several `v1=` may appear (the provider signs with old and new
// secret during a rotation) and we may hold several secrets (our side of a rotation): one
// match between them is enough. Comparison is constant-time; the timestamp bounds how long a
// captured delivery can be replayed.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'Psp-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export type SignatureVerdict =
  | { ok: true; timestamp: number }
  | { ok: false; status: 401; code: 'invalid_signature'; reason: string }
  | { ok: false; status: 400; code: 'timestamp_out_of_tolerance'; reason: string };

export interface VerifyOptions {
  header: string | undefined;
  rawBody: Buffer;
  secrets: readonly string[];
  toleranceSeconds: number;
  /** Now, in unix seconds (tests pass their own clock). */
  nowSeconds?: number;
}

export function verifySignature({ header, rawBody, secrets, toleranceSeconds, nowSeconds }: VerifyOptions): SignatureVerdict {
  const invalid = (reason: string): SignatureVerdict => ({ ok: false, status: 401, code: 'invalid_signature', reason });
  if (!header) return invalid(`no ${SIGNATURE_HEADER} header`);
  const { timestamp, signatures } = parseHeader(header);
  if (timestamp === null) return invalid('no valid t= in the signature header');
  if (signatures.length === 0) return invalid('no v1= signature in the signature header');

  const candidates = signatures.map((hex) => Buffer.from(hex, 'hex'));
  const matches = secrets.some((secret) => {
    const expected = Buffer.from(sign(secret, timestamp, rawBody), 'hex');
    // every candidate is compared, so the time taken does not tell which one came close
    return candidates.reduce((found, candidate) => (candidate.length === expected.length && timingSafeEqual(candidate, expected)) || found, false);
  });
  if (!matches) return invalid('no signature matches any configured secret');

  const now = nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > toleranceSeconds) {
    return {
      ok: false,
      status: 400,
      code: 'timestamp_out_of_tolerance',
      reason: `signed at ${timestamp}, ${now - timestamp} s from now; tolerance is ${toleranceSeconds} s`,
    };
  }
  return { ok: true, timestamp };
}

/** Hex HMAC-SHA256 of `"<timestamp>.<raw body>"`, as the provider computes it. */
export function sign(secret: string, timestamp: number, rawBody: Buffer | string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/** A header value signing `rawBody` with each of `secrets` (tests, and the provider simulator's shape). */
export function signatureHeader(secrets: readonly string[], timestamp: number, rawBody: Buffer | string): string {
  return [`t=${timestamp}`, ...secrets.map((secret) => `v1=${sign(secret, timestamp, rawBody)}`)].join(',');
}

function parseHeader(header: string): { timestamp: number | null; signatures: string[] } {
  let timestamp: number | null = null;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const name = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (name === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(value.toLowerCase());
  }
  return { timestamp, signatures };
}
