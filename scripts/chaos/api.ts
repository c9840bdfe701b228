// The harness's door to the system: the HTTP API, as the people who use it (a customer, support,
// finance, marketing, operations), with tokens from the development issuer. While the chaos
// runs, the API may answer 503 (Temporal restarting), time out or refuse a connection: such
// answers are tried again, a bounded number of times, and counted.
import type { Role } from '../../shared/permissions.ts';

export type Caller = [role: Role | Role[], subject: string];
export interface Answer<T = any> {
  status: number;
  body: T;
}

const RETRYABLE = new Set([429, 502, 503, 504]);
const REQUEST_TIMEOUT_MS = 15_000;

export class ChaosApi {
  /** Answers that were tried again (503 while Temporal restarts, timeouts, refused connections). */
  retries = 0;
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(
    private readonly baseUrl: string,
    private readonly tokenFor: (role: Role | Role[], subject: string) => Promise<string>,
  ) {}

  /**
   * One request, tried again on a transient failure until `giveUpAfterMs`; the last answer
   * (or a synthetic 599 when there never was one) is returned, never thrown.
   */
  async call<T = any>(
    method: 'GET' | 'POST',
    path: string,
    as: Caller,
    { body, headers = {}, giveUpAfterMs = 60_000 }: { body?: unknown; headers?: Record<string, string>; giveUpAfterMs?: number } = {},
  ): Promise<Answer<T>> {
    const deadline = Date.now() + giveUpAfterMs;
    for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 4_000)) {
      let answer: Answer<T>;
      try {
        const res = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${await this.token(as)}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...headers,
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        answer = { status: res.status, body: text ? safeJson(text) : {} };
      } catch (err) {
        answer = { status: 599, body: { error: { code: 'no_answer', message: (err as Error).message } } as T };
      }
      if (!RETRYABLE.has(answer.status) && answer.status !== 599) return answer;
      if (Date.now() + delayMs > deadline) return answer;
      this.retries += 1;
      await sleep(delayMs);
    }
  }

  private token([role, subject]: Caller): Promise<string> {
    const key = `${[role].flat().join(',')}:${subject}`;
    let token = this.tokens.get(key);
    if (!token) {
      token = this.tokenFor(role, subject);
      this.tokens.set(key, token);
    }
    return token;
  }
}

function safeJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return { raw: text };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The error code of an API answer, if it carries one. */
export function errorCode(answer: Answer): string | undefined {
  return answer.body?.error?.code;
}
