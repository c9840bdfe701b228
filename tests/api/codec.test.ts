// The codec server (api/routes/codec.ts) as the Web UI and the CLI call it: only a role with
// `payloads:decode` gets plaintext, encode then decode gives the payloads back, a payload under a
// key the API does not hold is named, not guessed at, and only the configured Web UI origin may
// call it from a browser. Temporal is not needed: the codec never talks to it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EncryptionCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../lib/payload-codec.ts';
import { ROLE_PERMISSIONS, ROLES } from '../../shared/permissions.ts';
import { ONLY_B_KEY_RING, TEST_KEY_RING } from '../support/payload-keys.ts';
import { startApiHarness, unreachableTemporalAddress, type ApiHarness, type Caller } from './harness.ts';

const UI_ORIGIN = 'http://127.0.0.1:8233';
const OTHER_ORIGIN = 'http://evil.example';
const OPS: Caller = { role: 'operations', subject: 'ops-olu' };
/** What the Web UI and the CLI send with every codec call. */
const NAMESPACE = { 'x-namespace': 'default' };

interface PayloadJson {
  metadata?: Record<string, string>;
  data?: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

/** A payload as the TypeScript SDK's JSON converter writes it, in protobuf JSON. */
function jsonPayload(value: unknown): PayloadJson {
  return { metadata: { encoding: b64('json/plain') }, data: b64(JSON.stringify(value)) };
}

/** What `codec.encode` makes of `values`, in protobuf JSON: as a history under that codec holds them. */
async function encryptedWith(codec: EncryptionCodec, ...values: unknown[]): Promise<PayloadJson[]> {
  const payloads = await codec.encode(
    values.map((value) => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) })),
  );
  return payloads.map((p) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  }));
}

let api: ApiHarness;

before(async () => {
  api = await startApiHarness({
    temporalAddress: await unreachableTemporalAddress(),
    payloadCodec: new EncryptionCodec(TEST_KEY_RING),
    codecCorsOrigins: [UI_ORIGIN],
  });
});

after(async () => {
  await api?.close();
});

describe('who may decode', () => {
  test('without a token: 401, nothing decoded', async () => {
    const [encrypted] = await encryptedWith(new EncryptionCodec(TEST_KEY_RING), { card: 'secret' });
    for (const path of ['/codec/decode', '/codec/encode']) {
      const res = await api.request('POST', path, { body: { payloads: [encrypted] }, headers: NAMESPACE });
      assert.equal(res.status, 401, `${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'unauthorized');
      assert.doesNotMatch(JSON.stringify(res.body), /secret/);
    }
  });

  const without = ROLES.filter((role) => !ROLE_PERMISSIONS[role].includes('payloads:decode'));
  test(`a role without payloads:decode (${without.join(', ')}): 403`, async () => {
    assert.ok(without.includes('customer') && without.includes('support'));
    const [encrypted] = await encryptedWith(new EncryptionCodec(TEST_KEY_RING), { card: 'secret' });
    for (const role of without) {
      for (const path of ['/codec/decode', '/codec/encode']) {
        const res = await api.request('POST', path, { as: { role, subject: `${role}-1` }, body: { payloads: [encrypted] }, headers: NAMESPACE });
        assert.equal(res.status, 403, `${role} ${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'forbidden');
      }
    }
  });
});

describe('encode and decode, as operations', () => {
  test('encode then decode gives back the original payloads; encoded they are binary/encrypted under the current key', async () => {
    const original = [jsonPayload({ orderId: 'order-1', amountMinor: 1299 }), jsonPayload('second'), { metadata: { encoding: b64('binary/null') }, data: '' }];
    const encoded = await api.request('POST', '/codec/encode', { as: OPS, body: { payloads: original }, headers: NAMESPACE });
    assert.equal(encoded.status, 200, JSON.stringify(encoded.body));
    assert.equal(encoded.body.payloads.length, original.length);
    for (const payload of encoded.body.payloads as PayloadJson[]) {
      assert.equal(unb64(payload.metadata?.encoding), ENCRYPTED_ENCODING);
      assert.equal(unb64(payload.metadata?.[KEY_ID_METADATA]), TEST_KEY_RING.encryptWith);
      assert.doesNotMatch(unb64(payload.data), /order-1|second/);
    }

    const decoded = await api.request('POST', '/codec/decode', { as: OPS, body: encoded.body, headers: NAMESPACE });
    assert.equal(decoded.status, 200, JSON.stringify(decoded.body));
    assert.deepEqual(decoded.body, { payloads: original });
    assert.equal(decoded.headers.get('cache-control'), 'no-store', 'decrypted data is kept by no cache');
  });

  test('what the workers encrypted (the same ring) decodes to the plaintext', async () => {
    const payloads = await encryptedWith(new EncryptionCodec(TEST_KEY_RING), { last4: '4242' });
    const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads }, headers: NAMESPACE });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(JSON.parse(unb64(res.body.payloads[0].data)), { last4: '4242' });
    assert.equal(unb64(res.body.payloads[0].metadata.encoding), 'json/plain');
  });

  test('payloads written before encryption was on pass through decode as they are', async () => {
    const plain = [jsonPayload({ legacy: true }), { metadata: { encoding: b64('binary/plain') }, data: b64('raw') }];
    const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads: plain }, headers: NAMESPACE });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { payloads: plain });
  });

  test('an empty list is an empty answer, and X-Namespace is optional', async () => {
    const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads: [] } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { payloads: [] });
  });

  test('a payload under a key the API does not hold: 400 unknown_payload_key naming the key and the payload', async () => {
    const [known] = await encryptedWith(new EncryptionCodec(TEST_KEY_RING), 'fine');
    const [foreign] = await encryptedWith(new EncryptionCodec(ONLY_B_KEY_RING), { card: 'secret' });
    const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads: [known, foreign] }, headers: NAMESPACE });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'unknown_payload_key');
    assert.match(res.body.error.message, /"test-b"/);
    assert.equal(res.body.error.keyId, 'test-b');
    assert.equal(res.body.error.field, 'payloads.1');
    assert.doesNotMatch(JSON.stringify(res.body), /secret|fine/, 'nothing decrypted comes back with the refusal');
  });

  test('an altered or truncated payload: 400 undecryptable_payload, nothing decrypted', async () => {
    const [payload] = await encryptedWith(new EncryptionCodec(TEST_KEY_RING), { card: 'secret' });
    const bytes = Buffer.from(payload!.data!, 'base64');
    bytes[bytes.length - 1]! ^= 0x01;
    const altered = { ...payload, data: bytes.toString('base64') };
    const truncated = { ...payload, data: bytes.subarray(0, 8).toString('base64') };
    for (const bad of [altered, truncated]) {
      const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads: [bad] }, headers: NAMESPACE });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'undecryptable_payload');
      assert.match(res.body.error.message, /"test-a"/);
      assert.equal(res.body.error.field, 'payloads.0');
    }
  });

  test('a body that is not Payloads in protobuf JSON: 400 naming the field', async () => {
    const res = await api.request('POST', '/codec/decode', { as: OPS, body: { payloads: [{ data: 'not base64!' }] }, headers: NAMESPACE });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_request');
    assert.equal(res.body.error.field, 'payloads.0.data');
  });
});

describe('CORS for the Web UI', () => {
  const preflight = (origin: string) =>
    fetch(`${api.baseUrl}/codec/decode`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-namespace' },
    });

  test("a preflight from the UI's origin: 204 with the CORS headers, no token needed", async () => {
    const res = await preflight(UI_ORIGIN);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(res.headers.get('access-control-allow-methods'), 'POST, OPTIONS');
    const allowedHeaders = (res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim());
    for (const header of ['authorization', 'content-type', 'x-namespace']) assert.ok(allowedHeaders.includes(header), `${header} is allowed`);
    assert.match(res.headers.get('vary') ?? '', /Origin/);
  });

  test("the UI's calls carry the CORS headers, a refusal too (so the UI can read why)", async () => {
    const token = await api.tokenFor(OPS.role, OPS.subject);
    const ok = await fetch(`${api.baseUrl}/codec/decode`, {
      method: 'POST',
      headers: { origin: UI_ORIGIN, authorization: `Bearer ${token}`, 'content-type': 'application/json', ...NAMESPACE },
      body: JSON.stringify({ payloads: [] }),
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');

    const refused = await fetch(`${api.baseUrl}/codec/decode`, {
      method: 'POST',
      headers: { origin: UI_ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ payloads: [] }),
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('access-control-allow-origin'), UI_ORIGIN);
  });

  test('another origin gets no CORS headers, so the browser refuses the answer', async () => {
    const res = await preflight(OTHER_ORIGIN);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
    const token = await api.tokenFor(OPS.role, OPS.subject);
    const post = await fetch(`${api.baseUrl}/codec/decode`, {
      method: 'POST',
      headers: { origin: OTHER_ORIGIN, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payloads: [] }),
    });
    assert.equal(post.headers.get('access-control-allow-origin'), null);
  });

  test('CORS is for /codec only: other routes answer no origin', async () => {
    const res = await fetch(`${api.baseUrl}/openapi.json`, { headers: { origin: UI_ORIGIN } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
});
