// `npm run bench -- [--n 500] [--concurrency 20] [--api http://127.0.0.1:3000]`
//
// Against a running stack (`bin/stack`): drives N checkouts, C at a time, through
// the HTTP API (POST, then poll until PAID) and measures POST→PAID, as a customer
// with a token from bin/stack's development issuer (scripts/token.ts); then runs the
// same steps N times from plain code without Temporal (scripts/bench/plain-orchestrator.ts)
// against the same services, each after tokenising the card at the PSP as the API does.
// Prints throughput and p50/p95/p99 for both and their ratio, writes everything to
// bench-results/checkout-<timestamp>.json, and prints the figures next to the previous run's.
// Figures only: nothing here asserts on timing.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { withServiceCredentials } from '../activities/http.ts';
import { createPaymentMethodClient } from '../api/payment-methods.ts';
import { createActivities } from '../activities/index.ts';
import { loadConfig } from '../lib/config.ts';
import { createDb } from '../lib/db.ts';
import type { CheckoutInput } from '../shared/checkout.ts';
import { runPool, summarize, type RunSummary } from './bench/measure.ts';
import { runPlainCheckout } from './bench/plain-orchestrator.ts';
import { runApiCheckout } from './bench/through-api.ts';
import { SEED } from './seed.ts';
import { devToken } from './token.ts';
import { TEST_CARD_NUMBERS } from '../services/psp/cards.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A SKU of its own, topped up before each run, so the bench never eats the demo catalogue. */
const BENCH_SKU = { sku: 'BENCH-WIDGET', name: 'Benchmark widget', priceMinor: 1000 };
const APPROVED_CARD = TEST_CARD_NUMBERS.approve;

interface Options {
  n: number;
  concurrency: number;
  api: string;
  pollMs: number;
  timeoutMs: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '20' },
      api: { type: 'string', default: 'http://127.0.0.1:3000' },
      'poll-ms': { type: 'string', default: '100' },
      'timeout-ms': { type: 'string', default: '120000' },
    },
  });
  const positive = (name: string, raw: string) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
    return value;
  };
  return {
    n: positive('n', values.n),
    concurrency: positive('concurrency', values.concurrency),
    api: values.api,
    pollMs: positive('poll-ms', values['poll-ms']),
    timeoutMs: positive('timeout-ms', values['timeout-ms']),
  };
}

async function main(): Promise<void> {
  const opts = options();
  const config = loadConfig();
  await requireHealthyApi(opts.api);
  // the price the catalogue sells at (a quoted price that is not the catalogue's is refused)
  const unitPriceMinor = await ensureBenchStock(config.databaseUrl, 2 * opts.n);

  const runId = new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14) + Math.random().toString(36).slice(2, 6);
  // The API starts a checkout only for the token's subject: customerId is the subject of the token sent.
  const customerId = SEED.customers[0];
  const tokenFor = customerTokens();
  await tokenFor(customerId); // before anything runs: no issuer, no bench
  const order = {
    customerId,
    currency: SEED.currency,
    lines: [{ sku: BENCH_SKU.sku, quantity: 1, unitPriceMinor }],
    paymentMethod: { type: 'card' as const, number: APPROVED_CARD },
  };
  // What a stack started with this environment encrypts its Temporal payloads with (lib/payload-codec.ts).
  const payloadEncryption = `AES-256-GCM, key "${config.payloadKeys.encryptWith}"`;
  console.log(`bench ${runId}: ${opts.n} checkouts, ${opts.concurrency} concurrent, API ${opts.api}, payloads ${payloadEncryption}`);

  console.log('\n1/2 through the API (Temporal workflow), POST → PAID');
  const temporal = await runPool(
    opts.n,
    opts.concurrency,
    async (i) =>
      runApiCheckout({
        apiUrl: opts.api,
        idempotencyKey: `bench-${runId}-${i}`,
        token: await tokenFor(order.customerId),
        body: order,
        pollMs: opts.pollMs,
        timeoutMs: opts.timeoutMs,
      }),
    progress(opts.n),
  );
  const withTemporal = summarize(temporal.outcomes, temporal.wallClockMs);
  report('Temporal workflow via API', withTemporal);

  console.log('\n2/2 plain sequential orchestrator (same activities, no Temporal)');
  const activities = withServiceCredentials(
    { serviceKey: config.serviceKeys[0]!, pspApiKey: config.pspApiKeys[0]! },
    createActivities(config.serviceUrls),
  );
  const paymentMethods = createPaymentMethodClient(config.serviceUrls.psp, { apiKey: config.pspApiKeys[0]! });
  const plain = await runPool(
    opts.n,
    opts.concurrency,
    async (i) => {
      const checkoutKey = `bench-plain-${runId}-${i}`;
      const t0 = performance.now();
      // timed too: the API tokenises inside every POST, so the baseline pays for it as well
      const paymentMethod = await paymentMethods.tokenise(`checkout:${checkoutKey}`, order.paymentMethod.number);
      const input: CheckoutInput = { checkoutKey, ...order, paymentMethod };
      await runPlainCheckout(activities, input, checkoutKey);
      return { ok: true, latencyMs: performance.now() - t0 };
    },
    progress(opts.n),
  );
  const withoutTemporal = summarize(plain.outcomes, plain.wallClockMs);
  report('Plain orchestrator', withoutTemporal);

  const ratio = ratios(withTemporal, withoutTemporal);
  console.log('\nTemporal vs plain');
  console.log(`  throughput  ×${fmt(ratio.throughput)} (Temporal / plain)`);
  console.log(`  latency     p50 ×${fmt(ratio.p50)}   p95 ×${fmt(ratio.p95)}   p99 ×${fmt(ratio.p99)} (Temporal / plain)`);
  console.log(`  note: API latency includes polling every ${opts.pollMs} ms, so it is rounded up by up to that much`);

  const file = path.join(ROOT, 'bench-results', `checkout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  const previous = await previousRun(path.dirname(file));
  const record = {
    runId,
    startedAt: new Date().toISOString(),
    options: opts,
    payloadEncryption,
    order: { ...order, paymentMethod: { type: 'card' } },
    temporal: withTemporal,
    plain: withoutTemporal,
    ratio,
  };
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  if (previous) compareWithPrevious(previous, withTemporal, opts, payloadEncryption);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

interface PreviousRun {
  file: string;
  options: Options;
  temporal: RunSummary;
  /** Absent in runs recorded before payloads were encrypted. */
  payloadEncryption?: string;
}

/** The newest earlier result in bench-results/, if any. */
async function previousRun(dir: string): Promise<PreviousRun | null> {
  const files = (await readdir(dir)).filter((f) => /^checkout-.*\.json$/.test(f)).sort();
  const newest = files.at(-1);
  if (!newest) return null;
  try {
    return { file: newest, ...(JSON.parse(await readFile(path.join(dir, newest), 'utf8')) as Omit<PreviousRun, 'file'>) };
  } catch {
    return null;
  }
}

/** This run's Temporal figures beside the previous run's, so a change (e.g. encryption) shows its cost. */
function compareWithPrevious(previous: PreviousRun, current: RunSummary, opts: Options, payloadEncryption: string): void {
  const before = previous.temporal;
  console.log(`\nTemporal workflow via API, this run vs the previous (${previous.file})`);
  console.log(`  payloads     ${payloadEncryption}   vs   ${previous.payloadEncryption ?? 'not encrypted (recorded before encryption)'}`);
  console.log(`  options      n ${current.count}, concurrency ${opts.concurrency}   vs   n ${before.count}, concurrency ${previous.options?.concurrency ?? '?'}`);
  const row = (name: string, now: number | undefined, then: number | undefined) =>
    console.log(`  ${name.padEnd(12)} ${fmt(now ?? null).padStart(8)}   vs ${fmt(then ?? null).padStart(8)}   (×${fmt(now !== undefined && then ? now / then : null)})`);
  row('checkouts/s', current.throughputPerSec, before.throughputPerSec);
  row('p50 ms', current.latencyMs?.p50, before.latencyMs?.p50);
  row('p95 ms', current.latencyMs?.p95, before.latencyMs?.p95);
  row('p99 ms', current.latencyMs?.p99, before.latencyMs?.p99);
}

async function requireHealthyApi(apiUrl: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(new URL('/healthz', apiUrl), { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new Error(`the API at ${apiUrl} is not reachable (${(err as Error).message}); start the stack with bin/stack`);
  }
  if (res.status !== 200) throw new Error(`the API at ${apiUrl} is not healthy: ${res.status} ${await res.text()}`);
}

/**
 * One access token per customer id (role customer, subject = the id), from the development
 * issuer bin/stack runs; asked for once and reused (they live an hour).
 */
function customerTokens(): (customerId: string) => Promise<string> {
  const tokens = new Map<string, Promise<string>>();
  return (customerId) => {
    let token = tokens.get(customerId);
    if (!token) {
      token = devToken(['customer'], customerId);
      tokens.set(customerId, token);
    }
    return token;
  };
}

/**
 * Makes sure the bench SKU is in the catalogue with at least `units` available; tops it up if
 * not. Returns its catalogue price.
 */
async function ensureBenchStock(databaseUrl: string, units: number): Promise<number> {
  const db = createDb(databaseUrl);
  try {
    const item = await db.stockItem.findUnique({ where: { sku: BENCH_SKU.sku } });
    if (!item) {
      await db.stockItem.create({ data: { ...BENCH_SKU, currency: SEED.currency, onHand: units, reserved: 0 } });
      return BENCH_SKU.priceMinor;
    }
    if (item.currency !== SEED.currency) {
      throw new Error(`${BENCH_SKU.sku} is sold in ${item.currency}, the bench pays in ${SEED.currency}`);
    }
    if (item.onHand - item.reserved < units) {
      await db.stockItem.update({ where: { sku: BENCH_SKU.sku }, data: { onHand: item.reserved + units } });
    }
    return item.priceMinor;
  } catch (err) {
    throw new Error(`cannot prepare the bench stock in ${redact(databaseUrl)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await db.$disconnect();
  }
}

function progress(total: number): (done: number) => void {
  const step = Math.max(1, Math.floor(total / 10));
  return (done) => {
    if (done % step === 0 || done === total) console.log(`  ${done}/${total}`);
  };
}

function report(title: string, s: RunSummary): void {
  console.log(`\n${title}`);
  console.log(`  ${s.succeeded}/${s.count} PAID in ${fmt(s.wallClockMs / 1000)} s → ${fmt(s.throughputPerSec)} checkouts/s`);
  if (s.latencyMs) {
    const l = s.latencyMs;
    console.log(`  latency ms  p50 ${l.p50}   p95 ${l.p95}   p99 ${l.p99}   (min ${l.min}, max ${l.max})`);
  }
  for (const f of s.failures) console.log(`  failed ×${f.count}: ${f.reason}`);
}

function ratios(temporal: RunSummary, plain: RunSummary) {
  const div = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? Math.round((a / b) * 100) / 100 : null);
  return {
    throughput: div(temporal.throughputPerSec, plain.throughputPerSec),
    p50: div(temporal.latencyMs?.p50, plain.latencyMs?.p50),
    p95: div(temporal.latencyMs?.p95, plain.latencyMs?.p95),
    p99: div(temporal.latencyMs?.p99, plain.latencyMs?.p99),
  };
}

function fmt(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(2);
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured database';
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
