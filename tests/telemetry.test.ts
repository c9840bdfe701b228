// With OTEL_EXPORTER_OTLP_ENDPOINT set, a process's spans reach the collector over OTLP/HTTP at
// `<endpoint>/v1/traces` (a stand-in collector here), at the latest when tracing shuts down.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { loadConfig } from '../lib/config.ts';
import { installTracing, tracer } from '../lib/telemetry.ts';

test('spans are exported to the OTLP endpoint from the config', async () => {
  const received: { url: string | undefined; body: Buffer }[] = [];
  const collector = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ url: req.url, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/`;
    const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    assert.equal(config.otlpEndpoint, endpoint);

    const tracing = installTracing({ serviceName: 'otlp-test', otlpEndpoint: config.otlpEndpoint });
    tracer().startSpan('reserve stock').end();
    await tracing.shutdown();

    assert.equal(received.length, 1);
    assert.equal(received[0]!.url, '/v1/traces');
    // the JSON payload names the span and the service
    const payload = received[0]!.body.toString();
    assert.match(payload, /reserve stock/);
    assert.match(payload, /otlp-test/);
  } finally {
    collector.close();
  }
});
