// The published contract holds against the real system: schemathesis (PyPI, installed by
// scripts/install-schemathesis.sh) reads /openapi.json of a full stack and throws generated
// requests, valid and invalid, at every operation with a token of each role, and anonymously.
// Every answer must be no 5xx, a documented status, the documented content type and a body
// matching its schema (refusals: the shared error shape).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Role } from '../../shared/permissions.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCHEMATHESIS = join(ROOT, '.tools/venv/bin/schemathesis');

const CHECKS = ['not_a_server_error', 'status_code_conformance', 'content_type_conformance', 'response_schema_conformance'];
/** Test cases per operation and phase: enough to reach every documented refusal, few enough for CI. */
const MAX_EXAMPLES = Number(process.env.CONTRACT_MAX_EXAMPLES ?? 10);
/** Fixed, so a finding reproduces; CONTRACT_SEED explores elsewhere. */
const SEED = process.env.CONTRACT_SEED ?? '20260101';
/** One run is killed after this long: a hung run is a failure, not a stuck suite. */
const RUN_LIMIT_MS = 120_000;

/** Not fuzzed: the webhook's credential is an HMAC over the body, which no generator can make. */
const EXCLUDED_PATHS = new Set(['/webhooks/psp']);

const SUBJECTS: Record<Role, string> = {
  customer: 'cust-alice',
  support: 'support-sam',
  finance: 'finance-fay',
  marketing: 'marketing-max',
  operations: 'ops-olga',
};

type Json = Record<string, any>;

interface Operation {
  operationId: string;
  path: string;
  roles: Set<Role>;
  public: boolean;
}

let stack: TestStack;
let operations: Operation[];

before(async () => {
  assert.ok(existsSync(SCHEMATHESIS), `schemathesis is missing at ${SCHEMATHESIS}: run scripts/install-schemathesis.sh (bin/test does)`);
  // every request of a run comes from one address: far above what a person would send, so the limit never answers for the logic under test
  stack = await startTestStack({ rateLimitPerMinute: 1_000_000 });
  await stack.startWorker();
  const response = await fetch(`${stack.apiUrl}/openapi.json`);
  assert.equal(response.status, 200, 'the contract is served');
  const doc = (await response.json()) as Json;
  operations = Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    Object.values<Json>(item).map((op) => ({
      operationId: op.operationId as string,
      path,
      public: (op.security as unknown[]).length === 0,
      roles: new Set<Role>((op['x-permissions'] ?? []).flatMap((p: Json) => p.roles as Role[])),
    })),
  );
});

after(async () => {
  await stack?.stop();
});

interface RunResult {
  code: number | null;
  output: string;
  timedOut: boolean;
}

/** One schemathesis run over `operationIds`, as `token`'s holder (or anonymously). */
async function schemathesis(operationIds: string[], token: string | undefined): Promise<RunResult> {
  const cwd = await mkdtemp(join(tmpdir(), 'schemathesis-'));
  const args = [
    'run',
    `${stack.apiUrl}/openapi.json`,
    '--checks', CHECKS.join(','),
    // no links between operations are documented, so there is no stateful phase to run
    '--phases', 'examples,coverage,fuzzing',
    '--max-examples', String(MAX_EXAMPLES),
    '--seed', SEED,
    // one thread: hypothesis describes its strategies with ast.parse, which CPython 3.11 does not
    // survive from several threads at once ("AST constructor recursion depth mismatch")
    '--workers', '1',
    '--request-timeout', '15',
    '--generation-database', 'none',
    '--no-color',
    ...(token ? ['--header', `Authorization: Bearer ${token}`] : []),
    ...operationIds.flatMap((id) => ['--include-operation-id', id]),
  ];
  try {
    return await new Promise<RunResult>((resolve, reject) => {
      // its own process group, so the kill below takes its workers too
      const child = spawn(SCHEMATHESIS, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        process.kill(-child.pid!, 'SIGKILL');
      }, RUN_LIMIT_MS);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output, timedOut });
      });
    });
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

function assertPassed(result: RunResult, who: string): void {
  const report = `schemathesis as ${who}:\n${result.output}`;
  assert.ok(!result.timedOut, `schemathesis as ${who} did not finish within ${RUN_LIMIT_MS / 1000} s\n${report}`);
  assert.equal(result.code, 0, report);
}

function fuzzed(op: Operation): boolean {
  return !EXCLUDED_PATHS.has(op.path);
}

describe('the OpenAPI contract, against a real stack', { timeout: 10 * 60_000 }, () => {
  for (const role of Object.keys(SUBJECTS) as Role[]) {
    test(`as ${role}: no 5xx, and every answer is documented and matches its schema`, async () => {
      // the operations this role may call: where the contract says most about what succeeds
      const ids = operations.filter((op) => fuzzed(op) && op.roles.has(role)).map((op) => op.operationId);
      assert.ok(ids.length > 0, `some operation is permitted to ${role}`);
      const token = await stack.tokenFor(role, SUBJECTS[role]);
      assertPassed(await schemathesis(ids, token), role);
    });
  }

  test('anonymously: public operations answer, every other one refuses with 401 in the shared shape', async () => {
    const ids = operations.filter(fuzzed).map((op) => op.operationId);
    assertPassed(await schemathesis(ids, undefined), 'anonymous');
  });
});
