// Docker cannot run here, so this keeps docker-compose.yml honest another way:
// it parses, its pieces reference each other correctly, and the variables it
// tells users to set are exactly the ones lib/config.ts reads, pointing at the
// ports the file publishes.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../lib/config.ts';
import { SEARCH_ATTRIBUTES } from '../shared/search-attributes.ts';

interface ComposeService {
  image: string;
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, unknown> | string[];
  command?: string[] | string;
}
interface Compose {
  'x-app-env': Record<string, string>;
  services: Record<string, ComposeService>;
}

const compose = parse(await readFile(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as Compose;
const appEnv = compose['x-app-env'];
const publishedHostPorts = (service: string) =>
  (compose.services[service]?.ports ?? []).map((mapping) => Number(mapping.split(':')[0]));

test('every image is pinned and every dependency exists', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    assert.match(service.image, /:[0-9][\w.-]*$/, `${name} image must be pinned to a version`);
    const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const dep of deps) assert.ok(compose.services[dep], `${name} depends on unknown service ${dep}`);
  }
});

test('the app variables are the ones the code reads, and they reach the published ports', () => {
  const config = loadConfig(appEnv);
  assert.equal(config.temporal.address, appEnv.TEMPORAL_ADDRESS);
  assert.equal(config.temporal.namespace, appEnv.TEMPORAL_NAMESPACE);
  assert.equal(config.temporal.uiUrl, appEnv.TEMPORAL_UI_URL);
  assert.equal(config.databaseUrl, appEnv.DATABASE_URL);
  assert.equal(config.otlpEndpoint, appEnv.OTEL_EXPORTER_OTLP_ENDPOINT);
  assert.ok(publishedHostPorts('jaeger').includes(Number(new URL(config.otlpEndpoint!).port)), 'jaeger publishes the OTLP port');

  const temporalPort = Number(config.temporal.address!.split(':')[1]);
  assert.ok(publishedHostPorts('temporal').includes(temporalPort), 'temporal publishes TEMPORAL_ADDRESS port');
  assert.ok(publishedHostPorts('temporal-ui').includes(Number(new URL(config.temporal.uiUrl).port)), 'UI port');

  const db = new URL(config.databaseUrl);
  assert.ok(publishedHostPorts('app-db').includes(Number(db.port)), 'app-db publishes DATABASE_URL port');
  const dbEnv = compose.services['app-db']!.environment!;
  assert.equal(dbEnv.POSTGRES_USER, db.username);
  assert.equal(dbEnv.POSTGRES_PASSWORD, db.password);
  assert.equal(dbEnv.POSTGRES_DB, db.pathname.slice(1));
});

test("the Web UI decodes through the API's codec server, which lets the UI's origin call it", () => {
  const config = loadConfig(appEnv);
  const ui = compose.services['temporal-ui']!.environment!;
  // read by the Web UI image (TEMPORAL_CODEC_*), not by our code
  const codec = new URL(ui.TEMPORAL_CODEC_ENDPOINT!);
  assert.equal(codec.pathname, '/codec', 'the codec routes live under /codec (api/routes/codec.ts)');
  assert.equal(Number(codec.port), config.apiPort, 'the endpoint is the API on API_PORT, as the browser reaches it');
  assert.equal(ui.TEMPORAL_CODEC_PASS_ACCESS_TOKEN, 'true', "the operator's token goes with every codec call");
  assert.deepEqual(config.codecCorsOrigins, [new URL(config.temporal.uiUrl).origin], 'CODEC_CORS_ORIGINS is the UI as the browser reaches it');
});

test('the compose setup registers exactly the search attributes the workflows use', () => {
  const command = [compose.services['temporal-search-attributes']!.command].flat().join(' ');
  const registered = [...command.matchAll(/--name (\w+) --type (\w+)/g)].map(([, name, type]) => ({ name, type }));
  assert.deepEqual(
    registered.sort((a, b) => a.name!.localeCompare(b.name!)),
    SEARCH_ATTRIBUTES.map(({ name, type }) => ({ name, type })).sort((a, b) => a.name.localeCompare(b.name)),
  );
});
