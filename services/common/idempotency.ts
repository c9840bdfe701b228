// Idempotency-Key handling for POSTs (README "Conventions"). One row per
// (service, key) in idempotency_records:
//   - the row is inserted *before* the work, with INSERT ... ON CONFLICT DO NOTHING,
//     so of two concurrent requests with one key exactly one does the work;
//   - the other sees the row: still in progress → 429, finished → the stored
//     response is replayed, different request → 422;
//   - a 5xx (retryable) outcome deletes the row so the retry runs again, while 4xx
//     business answers are stored and replayed like successes;
//   - a row left in progress for longer than `staleAfterMs` belongs to a crashed
//     attempt and is taken over.
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Db } from '../../lib/db.ts';
import { HttpError, invalidRequest, toHttpError } from '../../lib/http-errors.ts';
import { canonicalJson } from '../../shared/canonical-json.ts';
import { type Handler, sendJson } from './reply.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
export const DEFAULT_STALE_AFTER_MS = 60_000;

export interface IdempotencyOptions {
  db: Db;
  /** The service name; keys are unique per scope. */
  scope: string;
  staleAfterMs?: number;
}

interface StoredRow {
  request_hash: string;
  response_code: number | null;
  response_text: string | null;
}

type Claim = { kind: 'run' } | { kind: 'replay'; status: number; json: string };

/** Wraps a POST handler so that it runs at most once per Idempotency-Key. */
export function idempotent(options: IdempotencyOptions, handler: Handler) {
  const { db, scope } = options;
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;

  return async (req: Request, res: Response): Promise<void> => {
    const key = req.get(IDEMPOTENCY_HEADER)?.trim();
    if (!key) throw invalidRequest(`missing ${IDEMPOTENCY_HEADER} header`, IDEMPOTENCY_HEADER);
    if (key.length > 255) throw invalidRequest(`${IDEMPOTENCY_HEADER} is longer than 255 characters`, IDEMPOTENCY_HEADER);
    const hash = requestHash(req);

    const claim = await claimKey(db, scope, key, hash, staleAfterMs);
    if (claim.kind === 'replay') {
      await sendJson(res, claim.status, claim.json, { 'Idempotent-Replayed': 'true' });
      return;
    }

    let status: number;
    let json: string;
    try {
      const reply = await handler(req);
      status = reply.status;
      json = JSON.stringify(reply.body);
    } catch (err) {
      const error = toHttpError(err);
      if (error.retryable) {
        await db.$executeRaw`DELETE FROM idempotency_records WHERE scope = ${scope} AND key = ${key} AND response_code IS NULL`.catch(
          () => {}, // if the database is down the row goes stale and is taken over later
        );
        throw err;
      }
      status = error.status;
      json = JSON.stringify(error.toBody());
    }
    // Stored as a JSON *string* holding the exact text: jsonb would reorder keys.
    await db.$executeRaw`
      UPDATE idempotency_records
         SET response_code = ${status}, response_body = to_jsonb(${json}::text), updated_at = now()
       WHERE scope = ${scope} AND key = ${key}`;
    await sendJson(res, status, json);
  };
}

async function claimKey(db: Db, scope: string, key: string, hash: string, staleAfterMs: number): Promise<Claim> {
  // A few rounds only cover a row deleted (failed attempt) between our INSERT and SELECT.
  for (let attempt = 0; attempt < 5; attempt++) {
    const inserted = await db.$executeRaw`
      INSERT INTO idempotency_records (scope, key, request_hash, created_at, updated_at)
      VALUES (${scope}, ${key}, ${hash}, now(), now())
      ON CONFLICT (scope, key) DO NOTHING`;
    if (inserted === 1) return { kind: 'run' };

    const [row] = await db.$queryRaw<StoredRow[]>`
      SELECT request_hash, response_code, response_body #>> '{}' AS response_text FROM idempotency_records WHERE scope = ${scope} AND key = ${key}`;
    if (!row) continue;
    if (row.request_hash !== hash) {
      throw new HttpError(422, 'idempotency_key_reused', `${IDEMPOTENCY_HEADER} "${key}" was already used for a different request`);
    }
    if (row.response_code !== null) {
      return { kind: 'replay', status: row.response_code, json: row.response_text ?? 'null' };
    }
    const takenOver = await db.$executeRaw`
      UPDATE idempotency_records SET updated_at = now()
       WHERE scope = ${scope} AND key = ${key} AND response_code IS NULL
         AND updated_at < now() - make_interval(secs => ${staleAfterMs / 1000})`;
    if (takenOver === 1) return { kind: 'run' };
    throw new HttpError(429, 'request_in_progress', `a request with ${IDEMPOTENCY_HEADER} "${key}" is still in progress`);
  }
  throw new HttpError(429, 'request_in_progress', `a request with ${IDEMPOTENCY_HEADER} "${key}" is being retried concurrently`);
}

function requestHash(req: Request): string {
  return hashRequest(req.method, req.originalUrl.split('?')[0]!, req.body);
}

/** Same method, path and body (keys in any order) → same hash. */
export function hashRequest(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body ?? {})}`).digest('hex');
}
