// How the provider signs a webhook (README "Webhooks"):
//   Psp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// During a secret rotation one v1= per secret is sent. Receivers verify on their
// own side, as a merchant would; tests use this to craft genuine or forged deliveries.
import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'Psp-Signature';
export const DEFAULT_WEBHOOK_SECRET = 'whsec_dev_secret';

/** Hex HMAC-SHA256 over `${timestamp}.${body}`; `body` must be the exact bytes sent. */
export function signPayload(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The Psp-Signature header value, with one v1= per secret (several only while rotating). */
export function signatureHeader(secrets: string | readonly string[], timestamp: number, body: string): string {
  const all = typeof secrets === 'string' ? [secrets] : secrets;
  return [`t=${timestamp}`, ...all.map((secret) => `v1=${signPayload(secret, timestamp, body)}`)].join(',');
}
