// Workflow histories as JSON files, in the proto3-JSON form the Temporal CLI and Web UI export.
//
// Why not `historyToJSON` / `historyFromJSON` from @temporalio/common/lib/proto-utils: in this
// install @temporalio/common, /proto and /worker each carry their own nested copy of protobufjs
// 8 (the root holds protobufjs 7 for @grpc/proto-loader), and the SDK helpers mix two copies,
// failing with "type must be a Type". Using the protobufjs that @temporalio/proto itself loads
// keeps the types and the JSON codec from the same copy.
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';
import proto from '@temporalio/proto';

type History = proto.temporal.api.history.v1.IHistory;

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
