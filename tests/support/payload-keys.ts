// The payload keys every test runs with: fixed, so histories recorded under them (the encrypted
// fixtures) replay on every machine, and not the development default, so a client or worker that
// forgot the data converter (or fell back to the dev ring) fails loudly instead of passing by luck.
// Plus what a test needs to look at a history as the cluster holds it.
import type { DataConverter, Payload } from '@temporalio/common';
import { temporalDataConverter } from '../../lib/data-converter.ts';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA, parseKeyRing, type PayloadKeyRing } from '../../lib/payload-codec.ts';

/** `id:base64key` entries as PAYLOAD_ENCRYPTION_KEYS lists them. Test-only keys: they protect nothing. */
export const TEST_PAYLOAD_KEY_A = 'test-a:FHc7kcdVP4TfJ8qTlXoCDNJbPOSD+G17poLLCnmKXrk=';
export const TEST_PAYLOAD_KEY_B = 'test-b:VjFMiibQ4QK3KjKRwb5UAxiV4+7f7D0MH5ECORzQ29U=';

/** The ring the tests use: "test-a" encrypts. A child process (a worker) gets it as PAYLOAD_ENCRYPTION_KEYS. */
export const TEST_PAYLOAD_KEYS = TEST_PAYLOAD_KEY_A;
export const TEST_KEY_RING: PayloadKeyRing = parseKeyRing(TEST_PAYLOAD_KEYS);

/** After a rotation: "test-b" encrypts, "test-a" still decrypts what runs started under it wrote. */
export const ROTATED_KEY_RING: PayloadKeyRing = parseKeyRing(`${TEST_PAYLOAD_KEY_B},${TEST_PAYLOAD_KEY_A}`);
/** Once "test-a" is retired: what it encrypted can no longer be read. */
export const ONLY_B_KEY_RING: PayloadKeyRing = parseKeyRing(TEST_PAYLOAD_KEY_B);

export function testDataConverter(ring: PayloadKeyRing = TEST_KEY_RING): DataConverter {
  return temporalDataConverter(ring);
}

/**
 * Left out of the searches below, plaintext by design: search attributes (indexed), headers (trace
 * context; the SDK skips them) and patch markers (the SDK core writes the patch id itself).
 */
const PLAINTEXT_BY_DESIGN = new Set(['searchAttributes', 'header', 'patch-data']);

/** Every payload in a history as the cluster holds it (fetched by a client without the codec), by event id. */
export function payloadsIn(history: { events?: unknown[] | null }): { eventId: number; path: string; payload: Payload }[] {
  const found: { eventId: number; path: string; payload: Payload }[] = [];
  const walk = (value: unknown, eventId: number, path: string): void => {
    if (!value || typeof value !== 'object' || value instanceof Uint8Array) return;
    const record = value as Record<string, unknown>;
    if (record.data instanceof Uint8Array && record.metadata && typeof record.metadata === 'object') {
      found.push({ eventId, path, payload: record as Payload });
      return;
    }
    for (const [key, child] of Object.entries(record)) if (!PLAINTEXT_BY_DESIGN.has(key)) walk(child, eventId, `${path}.${key}`);
  };
  for (const event of history.events ?? []) {
    const eventId = Number((event as { eventId?: unknown }).eventId);
    walk(event, eventId, `event ${eventId}`);
  }
  return found;
}

/** The payload's key id, or null for a payload that is not encrypted. */
export function keyIdOf(payload: Payload): string | null {
  const encoding = payload.metadata?.encoding;
  if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) return null;
  const keyId = payload.metadata?.[KEY_ID_METADATA];
  return keyId ? Buffer.from(keyId).toString() : '(none)';
}

/** All a history's text and bytes (bytes read as latin1), to search for what must not be there in plaintext. */
export function historyText(history: { events?: unknown[] | null }): string {
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') parts.push(value);
    else if (value instanceof Uint8Array) parts.push(Buffer.from(value).toString('latin1'));
    else if (value && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) if (!PLAINTEXT_BY_DESIGN.has(key)) walk(child);
    }
  };
  walk(history.events ?? []);
  return parts.join('\n');
}
