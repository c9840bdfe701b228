// One checkout through the public HTTP API: POST /checkouts, then poll its
// statusUrl until the workflow reports PAID (or anything final), both with the
// customer's bearer token.
import type { Outcome } from './measure.ts';

export interface ApiCheckoutOptions {
  apiUrl: string;
  idempotencyKey: string;
  /** An access token whose subject is the body's customerId (role customer). */
  token: string;
  body: unknown;
  pollMs: number;
  timeoutMs: number;
}

export async function runApiCheckout(options: ApiCheckoutOptions): Promise<Outcome> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const deadline = started + options.timeoutMs;

  const authorization = `Bearer ${options.token}`;

  const post = await request(options.apiUrl, '/checkouts', {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json', 'idempotency-key': options.idempotencyKey },
    body: JSON.stringify(options.body),
  });
  if (post.status !== 202) return { ok: false, latencyMs: elapsed(), failure: `POST /checkouts → ${post.status} ${errorCode(post.body)}` };
  const statusUrl = String((post.body as { statusUrl: string }).statusUrl);

  for (;;) {
    const get = await request(options.apiUrl, statusUrl, { method: 'GET', headers: { authorization } });
    if (get.status !== 200) return { ok: false, latencyMs: elapsed(), failure: `GET checkout → ${get.status} ${errorCode(get.body)}` };
    const view = get.body as { status: string; result?: { cancelReason?: string | null } | null };
    if (view.status === 'PAID') return { ok: true, latencyMs: elapsed() };
    if (view.status !== 'RUNNING') {
      const why = view.result?.cancelReason ? `: ${view.result.cancelReason}` : '';
      return { ok: false, latencyMs: elapsed(), failure: `checkout ended ${view.status}${why}` };
    }
    if (performance.now() > deadline) {
      return { ok: false, latencyMs: elapsed(), failure: `not PAID within ${options.timeoutMs} ms` };
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

async function request(apiUrl: string, path: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(path, apiUrl), { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = { error: { code: 'unparseable_body', message: text.slice(0, 200) } };
  }
  return { status: res.status, body };
}

function errorCode(body: unknown): string {
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  return error ? `${error.code}: ${error.message}` : '';
}
