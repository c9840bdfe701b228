// The one data converter: every client, worker, replayer, test and script that talks to Temporal
// uses it, so what one encrypts the others can read (lib/payload-codec.ts).
import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec, type PayloadKeyRing } from './payload-codec.ts';

/** Failure messages and stack traces as encrypted payloads too (lib/failure-converter.ts). */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.ts', import.meta.url));

export function temporalDataConverter(keys: PayloadKeyRing): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keys)], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/**
 * What every workflow bundle must be built with so the workflows encode failures as the worker's
 * converter expects: `bundleWorkflowCode({ workflowsPath, ...WORKFLOW_BUNDLE_CONVERTERS })`.
 */
export const WORKFLOW_BUNDLE_CONVERTERS = { failureConverterPath: FAILURE_CONVERTER_PATH } as const;
