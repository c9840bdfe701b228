// The payload codec on its own: what leaves the process is ciphertext under a named key, what
// comes back is checked before it is believed, and nothing it says about a key ever quotes one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { EncryptionCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, parseKeyRing, UnknownPayloadKeyError } from '../lib/payload-codec.ts';
import { keyIdOf, ONLY_B_KEY_RING, ROTATED_KEY_RING, TEST_KEY_RING, TEST_PAYLOAD_KEY_A, TEST_PAYLOAD_KEY_B } from './support/payload-keys.ts';

const SECRET_INPUT = { customerId: 'cust-ada-lovelace', lines: [{ sku: 'SKU-MUG', quantity: 2 }], paymentMethod: { token: 'pm_abc123XYZ789', last4: '4242' } };
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('latin1');
const keyMaterial = (entry: string) => entry.slice(entry.indexOf(':') + 1);

describe('the payload codec', () => {
  const codec = new EncryptionCodec(TEST_KEY_RING);
  const plain = () => defaultPayloadConverter.toPayload(SECRET_INPUT);

  test('a payload survives the round trip exactly, its metadata included', async () => {
    const original = plain();
    const [encrypted] = await codec.encode([original]);
    const [decoded] = await codec.decode([encrypted!]);
    assert.deepEqual(Object.keys(decoded!.metadata ?? {}), Object.keys(original.metadata ?? {}));
    assert.equal(text(decoded!.metadata?.encoding), 'json/plain');
    assert.deepEqual(Buffer.from(decoded!.data!), Buffer.from(original.data!));
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded!), SECRET_INPUT);
  });

  test('the encrypted payload names its key and encoding, and shows nothing of the plaintext', async () => {
    const [encrypted] = await codec.encode([plain()]);
    assert.equal(text(encrypted!.metadata?.encoding), ENCRYPTED_ENCODING);
    assert.equal(keyIdOf(encrypted!), 'test-a');
    assert.deepEqual(Object.keys(encrypted!.metadata ?? {}).sort(), ['encoding', KEY_ID_METADATA].sort(), 'the inner encoding is inside the ciphertext');
    const seen = text(encrypted!.data) + JSON.stringify(Object.values(encrypted!.metadata ?? {}).map(text));
    for (const secret of ['cust-ada-lovelace', 'SKU-MUG', 'pm_abc123XYZ789', 'json/plain']) assert.ok(!seen.includes(secret), secret);
  });

  test('the same payload encrypts differently each time (a fresh IV per payload)', async () => {
    const [first, second] = await codec.encode([plain(), plain()]);
    assert.notDeepEqual(Buffer.from(first!.data!), Buffer.from(second!.data!));
    const [third] = await codec.encode([plain()]);
    assert.notDeepEqual(Buffer.from(first!.data!), Buffer.from(third!.data!));
  });

  test('a flipped byte anywhere in the ciphertext is refused, naming the key', async () => {
    const [encrypted] = await codec.encode([plain()]);
    const data = Buffer.from(encrypted!.data!);
    for (const at of [0, 20, data.length - 1]) {
      const tampered = Buffer.from(data);
      tampered[at]! ^= 0x01;
      await assert.rejects(codec.decode([{ ...encrypted!, data: tampered }]), /key "test-a" does not decrypt/);
    }
  });

  test('a payload relabelled with another key id is refused, not misread', async () => {
    // both keys held, so the relabelled id resolves to a real key: the authenticated id still refuses it
    const [encrypted] = await new EncryptionCodec(ROTATED_KEY_RING).encode([plain()]);
    assert.equal(keyIdOf(encrypted!), 'test-b');
    const relabelled = { ...encrypted!, metadata: { ...encrypted!.metadata, [KEY_ID_METADATA]: Buffer.from('test-a') } };
    await assert.rejects(new EncryptionCodec(ROTATED_KEY_RING).decode([relabelled]), /key "test-a" does not decrypt/);
  });

  test('a payload under a key the ring does not hold fails with UnknownPayloadKeyError naming that key', async () => {
    const [encrypted] = await codec.encode([plain()]);
    await assert.rejects(new EncryptionCodec(ONLY_B_KEY_RING).decode([encrypted!]), (err: unknown) => {
      assert.ok(err instanceof UnknownPayloadKeyError);
      assert.equal(err.keyId, 'test-a');
      assert.match(err.message, /"test-a"/);
      return true;
    });
  });

  test('after a rotation the new key encrypts and the old one still decrypts', async () => {
    const rotated = new EncryptionCodec(ROTATED_KEY_RING);
    const [old] = await codec.encode([plain()]);
    const [fresh] = await rotated.encode([plain()]);
    assert.equal(keyIdOf(fresh!), 'test-b');
    for (const payload of await rotated.decode([old!, fresh!])) assert.deepEqual(defaultPayloadConverter.fromPayload(payload), SECRET_INPUT);
  });

  test('unencrypted payloads (histories from before encryption, search attributes) pass through unchanged', async () => {
    const original = plain();
    const binary = defaultPayloadConverter.toPayload(new Uint8Array([1, 2, 3]));
    const none: Payload = { metadata: {}, data: Buffer.from('raw') };
    const [a, b, c] = await new EncryptionCodec(ONLY_B_KEY_RING).decode([original, binary, none]);
    assert.equal(a, original);
    assert.equal(b, binary);
    assert.equal(c, none);
  });
});

describe('parseKeyRing', () => {
  test('the first entry encrypts, every entry decrypts', () => {
    const ring = parseKeyRing(` ${TEST_PAYLOAD_KEY_B} , ${TEST_PAYLOAD_KEY_A} `);
    assert.equal(ring.encryptWith, 'test-b');
    assert.deepEqual([...ring.keys.keys()], ['test-b', 'test-a']);
    assert.equal(ring.keys.get('test-a')!.length, 32);
  });

  test('a malformed ring is refused with an error that names the variable and the key id, never the key', () => {
    const short = 'short:' + Buffer.alloc(16, 7).toString('base64');
    const cases: [string, RegExp][] = [
      ['', /PAYLOAD_ENCRYPTION_KEYS lists no key/],
      [' , ', /PAYLOAD_ENCRYPTION_KEYS lists no key/],
      [short, /key "short" must be 32 bytes in base64, got 16/],
      [`${TEST_PAYLOAD_KEY_A},${TEST_PAYLOAD_KEY_A}`, /key id "test-a" is listed twice/],
      [keyMaterial(TEST_PAYLOAD_KEY_A), /every entry must be <key id>:<base64 key>/],
      [`bad id!:${keyMaterial(TEST_PAYLOAD_KEY_A)}`, /every entry must be <key id>:<base64 key>/],
    ];
    for (const [raw, expected] of cases) {
      assert.throws(() => parseKeyRing(raw), (err: Error) => {
        assert.match(err.message, expected);
        assert.match(err.message, /PAYLOAD_ENCRYPTION_KEYS/);
        for (const material of [keyMaterial(TEST_PAYLOAD_KEY_A), keyMaterial(short)]) {
          assert.ok(!err.message.includes(material), `"${err.message}" quotes key material`);
        }
        return true;
      }, raw);
    }
  });

  test('errors name the variable they were read from', () => {
    assert.throws(() => parseKeyRing('', 'OTHER_KEYS'), /OTHER_KEYS lists no key/);
  });
});
