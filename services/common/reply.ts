// What a service handler returns, and how it is written to the wire.
import type { Request, Response } from 'express';
import { holdIfHanging } from './faults.ts';

export interface Reply {
  status: number;
  body: unknown;
}

export type Handler = (req: Request) => Promise<Reply>;

export const ok = (body: unknown): Reply => ({ status: 200, body });
export const created = (body: unknown): Reply => ({ status: 201, body });
/** Taken on; the outcome is decided later (asynchronous payments). */
export const accepted = (body: unknown): Reply => ({ status: 202, body });

/** Writes an already-serialized JSON body, so a replay can be byte-for-byte the original. */
export async function sendJson(res: Response, status: number, json: string, headers: Record<string, string> = {}): Promise<void> {
  await holdIfHanging(res);
  if (res.destroyed || res.headersSent) return; // the caller gave up while we were holding
  res.status(status).set(headers).type('application/json').send(json);
}
