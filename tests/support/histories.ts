// Workflow histories as JSON files, in the proto3-JSON form the Temporal CLI and Web UI export;
// what is in them (type, patch markers); and the worker the recorders record them with.
//
// Why not `historyToJSON` / `historyFromJSON` from @temporalio/common/lib/proto-utils: in this
// install @temporalio/common, /proto and /worker each carry their own nested copy of protobufjs
// 8 (the root holds protobufjs 7 for @grpc/proto-loader), and the SDK helpers mix two copies,
// failing with "type must be a Type". Using the protobufjs that @temporalio/proto itself loads
// keeps the types and the JSON codec from the same copy.
import { createRequire } from 'node:module';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { testDataConverter } from './payload-keys.ts';

export type History = proto.temporal.api.history.v1.IHistory;

const requireFromProto = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'));
const { toJson, fromJson } = requireFromProto('protobufjs/ext/protojson') as {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
};
const { patchProtobufRoot } = requireFromProto('../lib/patch-protobuf-root') as {
  patchProtobufRoot<T>(root: T): T & { lookupType(name: string): unknown };
};
const historyType = patchProtobufRoot(proto).lookupType('temporal.api.history.v1.History');

export async function writeHistoryFile(path: string, history: History): Promise<void> {
  const message = proto.temporal.api.history.v1.History.fromObject(history);
  await writeFile(path, JSON.stringify(toJson(historyType, message), null, 2) + '\n');
}

export async function readHistoryFile(path: string): Promise<History> {
  const json: unknown = JSON.parse(await readFile(path, 'utf8'));
  return fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}

/** The committed histories: one folder per domain under tests/fixtures, each named `…histories`. */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface RecordedHistory {
  /** The file name without `.json`; replay reports use it as the workflow id. */
  workflowId: string;
  /** Relative to tests/fixtures, for messages. */
  file: string;
  history: History;
}

/** Every history in one folder, sorted by file name. */
export async function readHistoryDir(dir: string): Promise<RecordedHistory[]> {
  const folder = dir.endsWith('/') ? dir : `${dir}/`;
  const files = (await readdir(folder)).filter((f) => f.endsWith('.json')).sort();
  return Promise.all(
    files.map(async (file) => ({
      workflowId: file.replace(/\.json$/, ''),
      file: `${folder}${file}`.replace(FIXTURES_DIR, ''),
      history: await readHistoryFile(`${folder}${file}`),
    })),
  );
}

/** Every committed history, from every `…histories` folder under tests/fixtures. */
export async function readAllHistories(): Promise<RecordedHistory[]> {
  const folders = (await readdir(FIXTURES_DIR, { withFileTypes: true })).filter((d) => d.isDirectory() && d.name.endsWith('histories'));
  return (await Promise.all(folders.map((d) => readHistoryDir(`${FIXTURES_DIR}${d.name}`)))).flat();
}

export function workflowTypeOf(history: History): string {
  const name = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
  if (!name) throw new Error('not a workflow history: its first event is no WorkflowExecutionStarted');
  return name;
}

/**
 * The patch ids whose markers the history holds: `patched(id)` answered true when it was recorded.
 * The SDK core writes the marker (`core_patch`) with the id in plain JSON, never through our codec.
 */
export function patchMarkers(history: History): string[] {
  const ids: string[] = [];
  for (const event of history.events ?? []) {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_patch') continue;
    const data = marker.details?.['patch-data']?.payloads?.[0]?.data;
    if (!data) throw new Error(`patch marker ${String(event.eventId)} without its patch data`);
    ids.push((JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id);
  }
  return ids;
}

/**
 * How a recording worker answers the `patched()` calls its workflows meet. `current`: as every
 * worker now does (true, the marker is recorded, the new branch runs). `before-patches`: as a
 * worker from before any of them (false, no marker, the old branch runs). The second uses the
 * SDK's patch activation callback, meant for rolling a patch out before every worker knows it;
 * here it records the runs that started before a patch came in, so that replaying them proves
 * the old branch of each `patched()` still replays — including patches no committed history
 * from before them ever reached.
 */
export type PatchMode = 'current' | 'before-patches';

/** `<base>-encrypted`, or `<base>-before-patches-encrypted`: histories recorded under the test key ring. */
export function recordedName(base: string, patches: PatchMode): string {
  return patches === 'current' ? `${base}-encrypted` : `${base}-before-patches-encrypted`;
}

/**
 * Records a scenario as it runs now and, if that run met a `patched()` call, again as a run
 * started before the patches. `record` runs the scenario once under `patches` and answers the
 * patch ids its run met.
 */
export async function recordEachWay(record: (patches: PatchMode) => Promise<readonly string[]>): Promise<void> {
  const met = await record('current');
  if (met.length > 0) await record('before-patches');
}

let recordingRun = 0;

/**
 * Runs `body` with a worker of its own (test key ring) on a task queue of its own, its workflows
 * answering `patched()` as `patches` says; answers what `body` did and the patch ids the run met.
 */
export async function withRecordingWorker<T>(
  env: TestWorkflowEnvironment,
  { workflowBundle, activities, patches }: { workflowBundle: WorkflowBundle; activities: object; patches: PatchMode },
  body: (taskQueue: string) => Promise<T>,
): Promise<{ result: T; met: string[] }> {
  const taskQueue = `recording-${process.pid}-${++recordingRun}`;
  const met = new Set<string>();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    dataConverter: testDataConverter(),
    workflowBundle,
    activities,
    patchActivationCallback: ({ patchId }) => {
      met.add(patchId);
      return patches === 'current';
    },
  });
  const result = await worker.runUntil(body(taskQueue));
  return { result, met: [...met].sort() };
}
