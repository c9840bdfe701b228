// Encrypts every Temporal payload with AES-256-GCM before it leaves the process, so the cluster,
// its database and anyone reading a history see only ciphertext. The key id travels in the
// payload's metadata: a key ring (one key encrypts, every listed key decrypts) lets a key be
// rotated while runs started under the old one continue. Payloads without our encoding (histories
// written before encryption was on) pass through untouched.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const { Payload: PayloadProto } = proto.temporal.api.common.v1;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface PayloadKeyRing {
  /** The id of the key new payloads are encrypted with (the first one listed). */
  encryptWith: string;
  /** Every key that may decrypt, by id (including `encryptWith`). */
  keys: ReadonlyMap<string, Buffer>;
}

/**
 * Parses `id:base64key[,id:base64key...]` (each key 32 random bytes, e.g. `openssl rand -base64 32`).
 * The first entry encrypts; all of them decrypt. Errors name `variable`, never a key.
 */
export function parseKeyRing(raw: string, variable = 'PAYLOAD_ENCRYPTION_KEYS'): PayloadKeyRing {
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error(`${variable} lists no key`);
  const keys = new Map<string, Buffer>();
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEY_ID.test(id)) throw new Error(`${variable}: every entry must be <key id>:<base64 key>, the id from A-Z a-z 0-9 . _ -`);
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== KEY_BYTES) throw new Error(`${variable}: key "${id}" must be ${KEY_BYTES} bytes in base64, got ${key.length}`);
    if (keys.has(id)) throw new Error(`${variable}: key id "${id}" is listed twice`);
    keys.set(id, key);
  }
  return { encryptWith: entries[0]!.slice(0, entries[0]!.indexOf(':')), keys };
}

/** A payload encrypted under a key this process does not hold: say which, never decrypt garbage. */
export class UnknownPayloadKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`payload is encrypted with key "${keyId}", which is not in PAYLOAD_ENCRYPTION_KEYS: add it (to decrypt only, after the key that encrypts)`);
    this.name = 'UnknownPayloadKeyError';
  }
}

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: PayloadKeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const keyId = this.ring.encryptWith;
    const key = this.ring.keys.get(keyId)!;
    return payloads.map((payload) => {
      const plain = PayloadProto.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The key id is authenticated too: a payload relabelled with another id fails, it is not misread.
      cipher.setAAD(Buffer.from(keyId));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return {
        metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(keyId) },
        data: Buffer.concat([iv, body, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const keyId = text(payload.metadata?.[KEY_ID_METADATA]) ?? '(none)';
      const key = this.ring.keys.get(keyId);
      if (!key) throw new UnknownPayloadKeyError(keyId);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`encrypted payload under key "${keyId}" is too short to be ours`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new Error(`payload under key "${keyId}" does not decrypt: it was altered, or another key has that id`);
      }
      return PayloadProto.decode(plain) as Payload;
    });
  }
}

function utf8(value: string): Uint8Array {
  return Buffer.from(value, 'utf8');
}

function text(value: Uint8Array | null | undefined): string | undefined {
  return value ? Buffer.from(value).toString('utf8') : undefined;
}
