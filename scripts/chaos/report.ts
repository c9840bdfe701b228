// What a chaos run prints at the end: evidence that the faults happened (read from the services'
// and the API's own /metrics and the provider's tables, not from the schedule alone) and the
// invariants as a table with a count of violations each, the first few spelled out.
import type { ServiceUrls } from '../../lib/config.ts';
import type { Db } from '../../lib/db.ts';
import type { InvariantResult } from './invariants.ts';
import type { LoadTallies } from './load.ts';
import type { FaultCounts } from './schedule.ts';

/** Sums the samples of `metric` whose labels include all of `labels` (Prometheus text format). */
export function sumMetric(text: string, metric: string, labels: Record<string, string | RegExp> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const labelText = line.slice(metric.length).match(/^\{(.*)\}/)?.[1] ?? '';
    const found = Object.fromEntries([...labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const matches = Object.entries(labels).every(([k, v]) => (typeof v === 'string' ? found[k] === v : v.test(found[k] ?? '')));
    if (matches) sum += Number(line.trim().split(/\s+/).at(-1));
  }
  return sum;
}

async function readMetrics(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}

/**
 * Every fault must reach a caller as a 4xx or a retryable 503, never as a 500: the API's own
 * request counter, one violation per route that answered 500.
 */
export async function apiAnsweredNo500(apiUrl: string): Promise<InvariantResult> {
  const text = await readMetrics(apiUrl);
  const requests = sumMetric(text, 'commerce_http_request_duration_seconds_count');
  const byRoute = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('commerce_http_request_duration_seconds_count{') || !line.includes('status="500"')) continue;
    const route = line.match(/route="([^"]*)"/)?.[1] ?? '?';
    byRoute.set(route, (byRoute.get(route) ?? 0) + Number(line.trim().split(/\s+/).at(-1)));
  }
  return {
    rule: 'no API answer was a 500 (a fault shows as 503)',
    checked: requests,
    violations: text === '' ? ['the API metrics could not be read'] : [...byRoute].map(([route, n]) => `${n} answers 500 on ${route}`),
  };
}

/** Counts from the provider's tables: what the webhook and refund chaos did. */
async function providerEvidence(db: Db): Promise<Record<string, number>> {
  const [row] = await db.$queryRaw<{ dropped: number; redelivered: number; refused: number }[]>`
    SELECT (SELECT COUNT(*) FROM psp_deliveries WHERE status::text = 'DROPPED')::int AS dropped,
           (SELECT COUNT(*) FROM psp_deliveries WHERE attempts > 1)::int AS redelivered,
           (SELECT COUNT(*) FROM psp_refunds WHERE status::text = 'FAILED')::int AS refused`;
  return {
    'webhook events dropped by the provider': row!.dropped,
    'webhook events delivered more than once (retries)': row!.redelivered,
    'refunds refused by the provider': row!.refused,
  };
}

function table(results: InvariantResult[]): string[] {
  const width = Math.max(...results.map((r) => r.rule.length), 'invariant'.length);
  const lines = [
    `${'invariant'.padEnd(width)}  ${'checked'.padStart(7)}  ${'violations'.padStart(10)}`,
    `${'-'.repeat(width)}  ${'-'.repeat(7)}  ${'-'.repeat(10)}`,
  ];
  for (const r of results) lines.push(`${r.rule.padEnd(width)}  ${String(r.checked).padStart(7)}  ${String(r.violations.length).padStart(10)}`);
  const total = results.reduce((sum, r) => sum + r.violations.length, 0);
  lines.push(`${'-'.repeat(width)}  ${'-'.repeat(7)}  ${'-'.repeat(10)}`);
  lines.push(`${'total'.padEnd(width)}  ${''.padStart(7)}  ${String(total).padStart(10)}`);
  for (const r of results.filter((r) => r.violations.length > 0)) {
    lines.push('', `violations of "${r.rule}":`);
    for (const v of r.violations.slice(0, 10)) lines.push(`  - ${v}`);
    if (r.violations.length > 10) lines.push(`  … and ${r.violations.length - 10} more`);
  }
  return lines;
}

function counts(title: string, values: Record<string, number | string>): string[] {
  const width = Math.max(...Object.keys(values).map((k) => k.length));
  return [title, ...Object.entries(values).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
}

export interface Summary {
  db: Db;
  serviceUrls: ServiceUrls;
  apiUrl: string;
  faults: FaultCounts;
  workerStarts: number;
  apiRetries: number;
  tallies: LoadTallies;
  /** Refunds nobody in the harness owned, acted on by the operator's round after the faults (by id, times). */
  operatorRetries: Map<string, number>;
  results: InvariantResult[];
}

/** The report's lines: the faults as observed, what the drivers saw, the invariants table. */
export async function summaryLines(s: Summary): Promise<string[]> {
  const services = (await Promise.all(Object.values(s.serviceUrls).map(readMetrics))).join('\n');
  const api = await readMetrics(s.apiUrl);
  const { checkouts, refunds, issuances } = s.tallies;
  const lines = [
    '',
    ...counts('faults that happened:', {
      'worker SIGKILLs (then restarted)': s.faults.workerKills,
      'worker processes started': s.workerStarts,
      'dev server restarts': s.faults.devServerRestarts,
      'pg_terminate_backend rounds / connections cut': `${s.faults.terminations} / ${s.faults.connectionsTerminated}`,
      'service answers 503 (injected faults, dependencies down)': sumMetric(services, 'commerce_http_request_duration_seconds_count', { status: '503' }),
      'voids refused by the provider (409)': sumMetric(services, 'commerce_http_request_duration_seconds_count', { route: '/v1/payments/:id/void', status: '409' }),
      'duplicate webhooks received': sumMetric(api, 'commerce_webhook_events_total', { outcome: 'duplicate' }),
      ...(await providerEvidence(s.db)),
      'API calls tried again (503, timeouts)': s.apiRetries,
      'fault schedule entries that failed': s.faults.failedEntries,
    }),
    '',
    ...counts('what the drivers saw:', {
      'checkouts started': checkouts.started,
      'checkout outcomes': JSON.stringify(checkouts.outcomes),
      'checkouts refused at the door': JSON.stringify(checkouts.refusedAtStart),
      'customer cancels accepted / refused': `${checkouts.cancelsAccepted} / ${JSON.stringify(checkouts.cancelsRefused)}`,
      'repeated POSTs naming the same checkout': `${checkouts.repeatsSameCheckout} (different: ${checkouts.repeatsDifferent})`,
      'refunds requested': refunds.requested,
      'refund outcomes': JSON.stringify(refunds.outcomes),
      'refunds approved / rejected by finance': `${refunds.approved} / ${refunds.rejected}`,
      'refunds refused by the provider → operator retry / manual / abandon': `${refunds.providerRefusals} → ${refunds.operatorRetries} / ${refunds.manualRefunds} / ${refunds.abandoned}`,
      'other refunds the operator acted on after the faults': [...s.operatorRetries.values()].reduce((a, b) => a + b, 0),
      'issuance outcomes': JSON.stringify(issuances.outcomes),
      'unfinished (checkouts, refunds, issuances)': `${checkouts.unfinished.length}, ${refunds.unfinished.length}, ${issuances.unfinished.length}`,
    }),
    ...[...refunds.skipped, ...checkouts.unfinished, ...refunds.unfinished, ...issuances.unfinished].slice(0, 20).map((note) => `  note: ${note}`),
    '',
    'invariants:',
    ...table(s.results),
  ];
  return lines;
}
