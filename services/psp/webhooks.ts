// Delivering webhook events to the merchant's endpoint, at least once.
// A due delivery is claimed by pushing its next attempt a lease ahead (rows picked
// with SKIP LOCKED, so two PSP instances never send the same attempt), then sent
// outside any transaction; the outcome is written back. A crash mid-attempt just
// lets the lease run out and the attempt is made again — hence "at least once".
// Failures back off exponentially: retryBaseMs, doubling, capped at retryMaxMs.
import type { Db } from '../../lib/db.ts';
import type { ChaosSettings } from './chaos.ts';
import { SIGNATURE_HEADER, signatureHeader } from './signature.ts';

const ENDPOINT_ID = 'default';
const DELIVERY_BATCH = 10;

export interface DeliveryOptions {
  /** First retry delay (default 500 ms), doubling per failed attempt. */
  retryBaseMs: number;
  /** Longest retry delay (default 30 s). */
  retryMaxMs: number;
  /** How long one attempt may take before it counts as failed (default 5 s). */
  timeoutMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = { retryBaseMs: 500, retryMaxMs: 30_000, timeoutMs: 5_000 };

interface ClaimedDelivery {
  eventId: string;
  attempts: number;
  body: string;
  createdAt: Date;
}

export async function getWebhookEndpoint(db: Db): Promise<{ url: string | null }> {
  const endpoint = await db.pspWebhookEndpoint.findUnique({ where: { id: ENDPOINT_ID } });
  return { url: endpoint?.url ?? null };
}

export async function setWebhookEndpoint(db: Db, url: string): Promise<{ url: string }> {
  await db.pspWebhookEndpoint.upsert({ where: { id: ENDPOINT_ID }, create: { id: ENDPOINT_ID, url }, update: { url } });
  return { url };
}

export function retryDelayMs(attempts: number, options: DeliveryOptions): number {
  return Math.min(options.retryBaseMs * 2 ** Math.max(0, attempts - 1), options.retryMaxMs);
}

/** One round: claims the due deliveries and sends them. Without an endpoint, events wait. */
export async function deliverDueEvents(db: Db, chaos: ChaosSettings, options: DeliveryOptions, signal: AbortSignal): Promise<number> {
  const { url } = await getWebhookEndpoint(db);
  if (!url) return 0;

  // The lease covers every attempt of the round, sent one after another.
  const leaseMs = options.timeoutMs * (DELIVERY_BATCH + 1);
  const claimed = await db.$queryRaw<ClaimedDelivery[]>`
    UPDATE psp_deliveries d
       SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
      FROM psp_events e
     WHERE e.id = d.event_id
       AND d.event_id IN (SELECT event_id FROM psp_deliveries
                           WHERE status = 'PENDING' AND next_attempt_at <= now()
                           ORDER BY next_attempt_at, created_at
                           LIMIT ${DELIVERY_BATCH}
                             FOR UPDATE SKIP LOCKED)
    RETURNING d.event_id AS "eventId", d.attempts, e.body, e.created_at AS "createdAt"`;

  // oldest event first, unless chaos asks for newest first
  const order = chaos.reorder ? -1 : 1;
  claimed.sort((a, b) => order * (a.createdAt.getTime() - b.createdAt.getTime() || a.eventId.localeCompare(b.eventId)));

  for (const delivery of claimed) {
    if (signal.aborted) {
      // stopping: hand the claim back rather than leave it to the lease
      await db.$executeRaw`UPDATE psp_deliveries SET next_attempt_at = now(), updated_at = now() WHERE event_id = ${delivery.eventId}`;
      continue;
    }
    if (delivery.attempts === 1 && Math.random() < chaos.dropRate) {
      await db.$executeRaw`UPDATE psp_deliveries SET status = 'DROPPED', last_error = 'dropped by chaos', updated_at = now() WHERE event_id = ${delivery.eventId}`;
      continue;
    }
    const error = await send(url, delivery.body, chaos.secret, options.timeoutMs, signal);
    if (error === null) {
      await db.$executeRaw`
        UPDATE psp_deliveries SET status = 'DELIVERED', delivered_at = now(), last_error = NULL, updated_at = now()
         WHERE event_id = ${delivery.eventId}`;
      if (Math.random() < chaos.duplicateRate) await send(url, delivery.body, chaos.secret, options.timeoutMs, signal);
    } else {
      const delayMs = signal.aborted ? 0 : retryDelayMs(delivery.attempts, options);
      await db.$executeRaw`
        UPDATE psp_deliveries SET next_attempt_at = now() + make_interval(secs => ${delayMs / 1000}), last_error = ${error}, updated_at = now()
         WHERE event_id = ${delivery.eventId}`;
    }
  }
  return claimed.length;
}

/** Posts one signed delivery; null when the endpoint answered 2xx, else why not. */
async function send(url: string, body: string, secret: string, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signatureHeader(secret, timestamp, body) },
      body,
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    await response.body?.cancel();
    return response.ok ? null : `endpoint answered ${response.status}`;
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? `endpoint did not answer within ${timeoutMs} ms` : `endpoint unreachable: ${(err as Error).message}`;
  }
}
