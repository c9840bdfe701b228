// Replay covers what runs: every workflow type has a committed history that replays, and every
// `patched()` in workflows/ is replayed both ways — by a history recorded with its marker (the
// new branch) and by one of the same workflow type recorded without it that reaches the call (the
// old branch: a run from before the patch). Which answer each `patched()` gave is observed during
// replay (tests/fixtures/workflows/patch-probe.ts), not guessed from the markers alone.
//
// A new patch id fails here until histories are recorded on the code that has it. Re-record every
// domain's histories (each as the code runs now and, where a run meets a patch, as a run from
// before the patches: tests/support/histories.ts), then run this test again:
//   RECORD_HISTORIES=1 node --import tsx --test --test-concurrency=1 tests/workflows/replay.test.ts tests/workflows/refund-replay.test.ts tests/workflows/coupon-replay.test.ts tests/reconciliation/workflow.test.ts
//   node --import tsx --test tests/workflows/patch-coverage.test.ts
// If a patch is still not reached both ways, its branch is not in any recorded scenario: add one
// to the recorder of its domain (the scenarios at the top of each of those files).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type InjectedSinks } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_CONVERTERS } from '../../lib/data-converter.ts';
import { WORKFLOW_TYPES } from '../../shared/workflow-types.ts';
import { CHECKOUT_WORKFLOWS_PATH } from '../../workers/checkout-worker.ts';
import type { PatchProbeSinks } from '../fixtures/workflows/patch-probe.ts';
import { patchMarkers, readAllHistories, workflowTypeOf, type RecordedHistory } from '../support/histories.ts';
import { keyIdOf, testDataConverter } from '../support/payload-keys.ts';

const WORKFLOWS_DIR = fileURLToPath(new URL('../../workflows/', import.meta.url));
const PATCH_PROBE = fileURLToPath(new URL('../fixtures/workflows/patch-probe.ts', import.meta.url));
const RECORD_COMMAND = 'RECORD_HISTORIES=1 node --import tsx --test --test-concurrency=1 tests/workflows/replay.test.ts tests/workflows/refund-replay.test.ts tests/workflows/coupon-replay.test.ts tests/reconciliation/workflow.test.ts';

/**
 * Recorded before any patch existed (and before payloads were encrypted): the only histories that
 * prove an old branch replays as the code that came before it wrote them. Never re-recorded.
 */
const FROM_BEFORE_ANY_PATCH = [
  ...['cancelled', 'declined', 'out-of-stock', 'paid', 'paid-late', 'refunded'].map((s) => `histories/checkout-replay-${s}.json`),
  ...['abandoned', 'approved', 'expired', 'full', 'manual', 'retried'].map((s) => `refund-histories/refund-replay-${s}.json`),
  'reconciliation-histories/mismatch-resolution.json',
  'reconciliation-histories/reconciliation-run.json',
];

interface PatchCall {
  patchId: string;
  where: string;
}

/**
 * The `patched()` calls in workflows/, by reading the source: each names a string literal or a
 * `*_PATCH` constant declared with a literal somewhere in workflows/. Anything else is unreadable.
 */
async function patchCallsInSource(): Promise<{ calls: PatchCall[]; unreadable: string[] }> {
  const files = (await readdir(WORKFLOWS_DIR, { recursive: true })).filter((f) => f.endsWith('.ts')).sort();
  const sources = await Promise.all(
    files.map(async (file) => ({ file: `workflows/${file}`, text: withoutComments(await readFile(`${WORKFLOWS_DIR}${file}`, 'utf8')) })),
  );
  const constants = new Map<string, string>();
  for (const { text } of sources) {
    for (const [, name, id] of text.matchAll(/\bconst\s+([A-Z][A-Z0-9_]*_PATCH)\s*(?::\s*string\s*)?=\s*['"`]([^'"`]+)['"`]/g)) constants.set(name!, id!);
  }
  const calls: PatchCall[] = [];
  const unreadable: string[] = [];
  for (const { file, text } of sources) {
    for (const match of text.matchAll(/\bpatched\(([^)]*)\)/g)) {
      const where = `${file}:${text.slice(0, match.index).split('\n').length}`;
      const arg = match[1]!.trim();
      const literal = /^['"`]([^'"`]+)['"`]$/.exec(arg)?.[1];
      const patchId = literal ?? constants.get(arg);
      if (patchId === undefined) unreadable.push(`${where}: patched(${arg})`);
      else calls.push({ patchId, where });
    }
  }
  return { calls, unreadable };
}

/** Comments out of the way (a comment may mention `patched(`), keeping the line count. */
function withoutComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

interface Replayed {
  recorded: RecordedHistory;
  type: string;
  error?: string;
  /** Each patch id `patched()` was asked about during the replay, with the answers it gave. */
  answers: Map<string, Set<boolean>>;
}

let histories: RecordedHistory[];
let replayed: Replayed[];
let source: Awaited<ReturnType<typeof patchCallsInSource>>;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  source = await patchCallsInSource();
  histories = await readAllHistories();
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: CHECKOUT_WORKFLOWS_PATH,
    workflowInterceptorModules: [PATCH_PROBE],
    ...WORKFLOW_BUNDLE_CONVERTERS,
    logger: new DefaultLogger('ERROR'),
  });
  const byFile = new Map<string, Replayed>(histories.map((h) => [h.file, { recorded: h, type: workflowTypeOf(h.history), answers: new Map() }]));
  const sinks = {
    patchProbe: {
      answered: {
        fn: ({ workflowId }: { workflowId: string }, patchId: string, used: boolean) => {
          const answers = byFile.get(workflowId)!.answers;
          answers.set(patchId, (answers.get(patchId) ?? new Set()).add(used));
        },
        callDuringReplay: true,
      },
    },
  } satisfies InjectedSinks<PatchProbeSinks>;
  // the file is the replay's workflow id, so each answer is put down to its history
  const inputs = histories.map((h) => ({ workflowId: h.file, history: h.history }));
  for await (const { workflowId, error } of Worker.runReplayHistories({ workflowBundle, dataConverter: testDataConverter(), sinks }, inputs)) {
    if (error) byFile.get(workflowId)!.error = error.message;
  }
  replayed = [...byFile.values()];
});

describe('replay coverage', () => {
  test('every workflow type has a committed history that replays on the current code', () => {
    const replaying = new Set(replayed.filter((r) => r.error === undefined).map((r) => r.type));
    const without = Object.values(WORKFLOW_TYPES).filter((type) => !replaying.has(type));
    const failing = replayed.filter((r) => r.error !== undefined).map((r) => `${r.recorded.file}: ${r.error}`);
    assert.deepEqual(
      without,
      [],
      `workflow types without a committed history that replays: ${without.join(', ')}` +
        (failing.length > 0 ? `\nhistories that no longer replay:\n  ${failing.join('\n  ')}` : ''),
    );
  });

  test('every patched() in workflows/ names its patch id as a literal or a *_PATCH constant', () => {
    assert.deepEqual(source.unreadable, [], 'patch ids this test cannot read from the source');
    assert.ok(source.calls.length > 0, `no patched() call found in ${WORKFLOWS_DIR}`);
  });

  test('every patch is replayed both ways: with its marker (patched() answers true) and, in the same workflow type, from before it (false)', () => {
    const answered = replayed.filter((r) => r.error === undefined && r.answers.size > 0);
    const markers = replayed.filter((r) => patchMarkers(r.recorded.history).length > 0);
    assert.ok(answered.length > 0 || markers.length === 0, 'histories hold patch markers but the probe saw no patched() answer: tests/fixtures/workflows/patch-probe.ts no longer reaches patched()');

    const gaps: string[] = [];
    for (const patchId of [...new Set(source.calls.map((c) => c.patchId))].sort()) {
      const where = source.calls.filter((c) => c.patchId === patchId).map((c) => c.where).join(', ');
      const answering = (used: boolean) => answered.filter((r) => r.answers.get(patchId)?.has(used));
      const withMarker = answering(true).filter((r) => patchMarkers(r.recorded.history).includes(patchId));
      const withoutMarker = answering(false).filter((r) => !patchMarkers(r.recorded.history).includes(patchId));
      const newTypes = new Set(withMarker.map((r) => r.type));
      const bothWays = [...newTypes].filter((type) => withoutMarker.some((r) => r.type === type));
      if (withMarker.length === 0) {
        gaps.push(`${patchId} (${where}): no committed history holds its marker — re-record`);
      } else if (bothWays.length === 0) {
        gaps.push(
          `${patchId} (${where}): recorded with its marker in ${[...newTypes].join(', ')} histories, but no history of those types ` +
            `without the marker reaches the call — re-record (the runs from before the patches are recorded too), or add a scenario that reaches it`,
        );
      }
    }
    assert.deepEqual(gaps, [], `patches not replayed both ways:\n  ${gaps.join('\n  ')}\nRe-record with:\n  ${RECORD_COMMAND}`);
  });

  test('the histories recorded before any patch are kept as they were: unencrypted, without patch markers', () => {
    const problems = FROM_BEFORE_ANY_PATCH.flatMap((file) => {
      const found = histories.find((h) => h.file === file);
      if (!found) return [`${file}: missing`];
      const key = keyIdOf(found.history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!);
      const markers = patchMarkers(found.history);
      return [
        ...(key === null ? [] : [`${file}: encrypted (key ${key}): re-recorded over`]),
        ...(markers.length === 0 ? [] : [`${file}: holds patch markers ${markers.join(', ')}: re-recorded over`]),
      ];
    });
    assert.deepEqual(problems, [], 'a recorder wrote over a history from before the patches; restore it from git and record under a new name');
  });
});
