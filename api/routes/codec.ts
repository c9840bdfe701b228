// The codec server: POST /codec/decode and /codec/encode in Temporal's remote codec protocol, so
// the Web UI and the `temporal` CLI can show an operator the inputs and results that the
// cluster only ever holds encrypted (lib/payload-codec.ts). The Web UI calls it from the
// browser, on another origin: codecCors() answers its preflights for the configured origins.
import type { RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { HttpError } from '../../lib/http-errors.ts';
import { UnknownPayloadKeyError } from '../../lib/payload-codec.ts';
import type { RouteDeclarer } from '../route.ts';

export interface CodecRoutesDeps {
  codec: PayloadCodec;
}

/** A page of history in one request: a workflow's input, results and failures can be large. */
const CODEC_BODY_LIMIT = '4mb';

// Protobuf JSON encodes bytes as base64, standard or URL-safe, padded or not.
const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');

const payloadJson = z.object({
  metadata: z.record(z.string(), base64).optional(),
  data: base64.optional(),
});
type PayloadJson = z.output<typeof payloadJson>;

/** The protocol's body and answer both: `Payloads` as protobuf JSON. */
const payloadsJson = z.object({ payloads: z.array(payloadJson).default([]) });

const namespaceHeader = {
  'X-Namespace': {
    description: 'the namespace the payloads come from (sent by the Web UI and the CLI); one key ring serves every namespace',
    required: false,
    schema: z.string(),
  },
};

export function codecRoutes(route: RouteDeclarer, deps: CodecRoutesDeps): void {
  route(
    {
      method: 'post',
      path: '/codec/decode',
      summary: 'Decrypt payloads for the Web UI or the CLI (payloads without our encryption come back as they are)',
      tag: 'codec',
      permissions: ['payloads:decode'],
      headers: namespaceHeader,
      body: payloadsJson,
      bodyLimit: CODEC_BODY_LIMIT,
      responses: { 200: { description: 'The decrypted payloads, in order', schema: payloadsJson } },
    },
    async ({ res, body }) => {
      const decoded: Payload[] = [];
      // one at a time, so a refusal names the payload at fault
      for (const [index, payload] of body.payloads.entries()) {
        try {
          decoded.push(...(await deps.codec.decode([fromJson(payload)])));
        } catch (err) {
          throw undecodable(err, `payloads.${index}`);
        }
      }
      send(res, decoded);
    },
  );

  route(
    {
      method: 'post',
      path: '/codec/encode',
      summary: 'Encrypt payloads with the current key (e.g. a signal input typed into the Web UI)',
      tag: 'codec',
      permissions: ['payloads:decode'],
      headers: namespaceHeader,
      body: payloadsJson,
      bodyLimit: CODEC_BODY_LIMIT,
      responses: { 200: { description: 'The encrypted payloads, in order', schema: payloadsJson } },
    },
    async ({ res, body }) => {
      send(res, await deps.codec.encode(body.payloads.map(fromJson)));
    },
  );
}

function undecodable(err: unknown, field: string): HttpError {
  if (err instanceof UnknownPayloadKeyError) {
    return new HttpError(400, 'unknown_payload_key', err.message, { field, details: { keyId: err.keyId } });
  }
  // The codec's own refusals (altered, truncated, or under another key of the same id) say which key, never bytes.
  return new HttpError(400, 'undecryptable_payload', (err as Error).message, { field });
}

function send(res: Response, payloads: Payload[]): void {
  // decrypted business data: no cache along the way may keep a copy
  res.setHeader('Cache-Control', 'no-store');
  res.json({ payloads: payloads.map(toJson) });
}

function fromJson(payload: PayloadJson): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')])),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

function toJson(payload: Payload): PayloadJson {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}

const CORS_METHODS = 'POST, OPTIONS';
// The Web UI sends X-Namespace always, Authorization with TEMPORAL_CODEC_PASS_ACCESS_TOKEN, and
// then also Authorization-Extras (the ID token) when it has one: a header missing here fails the preflight.
const CORS_HEADERS = 'authorization, authorization-extras, content-type, x-namespace';
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * CORS for /codec/* only: a browser page from one of `origins` (the Web UI's, CODEC_CORS_ORIGINS)
 * may call the codec with the operator's token; any other origin gets no CORS headers, so the
 * browser keeps the answer from it. Preflights are answered here, before any token is asked for
 * (a browser never sends one with a preflight). helmet's `Cross-Origin-Resource-Policy: same-origin`
 * stays: it binds only no-cors loads, not these CORS fetches (tests/e2e/web-ui-codec.test.ts).
 */
export function codecCors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map(originOf));
  return (req, res, next) => {
    // the answer depends on Origin: a shared cache must not hand one origin's answer to another
    res.vary('Origin');
    const origin = req.get('origin');
    const isAllowed = origin !== undefined && allowed.has(origin);
    if (isAllowed) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method !== 'OPTIONS') return next();
    if (isAllowed) {
      res.setHeader('Access-Control-Allow-Methods', CORS_METHODS);
      res.setHeader('Access-Control-Allow-Headers', CORS_HEADERS);
      res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SECONDS);
    }
    res.setHeader('Allow', CORS_METHODS);
    res.status(204).end();
  };
}

/** `https://ui.example.com/` → `https://ui.example.com`, as a browser sends it in Origin. */
function originOf(configured: string): string {
  let url: URL;
  try {
    url = new URL(configured);
  } catch {
    throw new Error(`CODEC_CORS_ORIGINS: "${configured}" is not an origin (scheme://host[:port])`);
  }
  if (url.origin === 'null') throw new Error(`CODEC_CORS_ORIGINS: "${configured}" is not an http(s) origin`);
  return url.origin;
}
