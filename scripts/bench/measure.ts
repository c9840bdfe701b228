// Running N jobs with C at a time, and summarizing how long the successful ones took.

export interface Outcome {
  ok: boolean;
  latencyMs: number;
  /** Why it did not reach PAID (status, error message). */
  failure?: string;
}

export interface RunSummary {
  count: number;
  succeeded: number;
  failed: number;
  wallClockMs: number;
  /** Successful checkouts per second of wall-clock time. */
  throughputPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number; min: number; max: number; mean: number } | null;
  /** Up to 10 distinct failure reasons with how often each occurred. */
  failures: { reason: string; count: number }[];
}

/** Runs job(0..n-1), at most `concurrency` at a time, and returns the outcomes in index order. */
export async function runPool(
  n: number,
  concurrency: number,
  job: (index: number) => Promise<Outcome>,
  onProgress?: (done: number) => void,
): Promise<{ outcomes: Outcome[]; wallClockMs: number }> {
  const outcomes: Outcome[] = new Array(n);
  let next = 0;
  let done = 0;
  const started = performance.now();
  const lane = async () => {
    for (let i = next++; i < n; i = next++) {
      const t0 = performance.now();
      try {
        outcomes[i] = await job(i);
      } catch (err) {
        outcomes[i] = { ok: false, latencyMs: performance.now() - t0, failure: err instanceof Error ? err.message : String(err) };
      }
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return { outcomes, wallClockMs: performance.now() - started };
}

export function summarize(outcomes: Outcome[], wallClockMs: number): RunSummary {
  const latencies = outcomes.filter((o) => o.ok).map((o) => o.latencyMs).sort((a, b) => a - b);
  const reasons = new Map<string, number>();
  for (const o of outcomes) if (!o.ok) reasons.set(o.failure ?? 'unknown', (reasons.get(o.failure ?? 'unknown') ?? 0) + 1);
  return {
    count: outcomes.length,
    succeeded: latencies.length,
    failed: outcomes.length - latencies.length,
    wallClockMs: round(wallClockMs),
    throughputPerSec: round(latencies.length / (wallClockMs / 1000)),
    latencyMs: latencies.length
      ? {
          p50: round(percentile(latencies, 50)),
          p95: round(percentile(latencies, 95)),
          p99: round(percentile(latencies, 99)),
          min: round(latencies[0]!),
          max: round(latencies[latencies.length - 1]!),
          mean: round(latencies.reduce((a, b) => a + b, 0) / latencies.length),
        }
      : null,
    failures: [...reasons]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([reason, count]) => ({ reason, count })),
  };
}

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
