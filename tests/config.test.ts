// Configuration fails closed: in production a process refuses to start on development defaults
// or without its secrets, naming every variable to set; development keeps working out of the box.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import {
  DEV_FINGERPRINT_SECRET,
  DEV_PAYLOAD_KEYS,
  DEV_PSP_API_KEY,
  DEV_SERVICE_KEY,
  DEV_WEBHOOK_SECRET,
  loadConfig,
  requireProductionSettings,
  type ProcessRole,
} from '../lib/config.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A production environment with everything configured, as a deployment would set it. */
const CONFIGURED = {
  NODE_ENV: 'production',
  AUTH_ISSUER: 'https://login.example.com/realms/shop',
  AUTH_AUDIENCE: 'commerce-api',
  PSP_WEBHOOK_SECRETS: 'whsec_live_1',
  PSP_WEBHOOK_SECRET: 'whsec_live_1',
  SERVICE_API_KEYS: 'svc_live_1,svc_live_0',
  PSP_API_KEYS: 'sk_live_1',
  PAYLOAD_ENCRYPTION_KEYS: `live-2:${Buffer.alloc(32, 2).toString('base64')},live-1:${Buffer.alloc(32, 1).toString('base64')}`,
  REQUEST_FINGERPRINT_SECRET: 'fp_live_1',
};

/** The variables each process must have in production. */
const REQUIRED: Record<ProcessRole, string[]> = {
  api: ['AUTH_ISSUER', 'AUTH_AUDIENCE', 'PSP_WEBHOOK_SECRETS', 'SERVICE_API_KEYS', 'PSP_API_KEYS', 'PAYLOAD_ENCRYPTION_KEYS', 'REQUEST_FINGERPRINT_SECRET'],
  services: ['SERVICE_API_KEYS', 'PSP_API_KEYS', 'PSP_WEBHOOK_SECRET'],
  worker: ['SERVICE_API_KEYS', 'PSP_API_KEYS', 'PAYLOAD_ENCRYPTION_KEYS'],
};

function refusal(role: ProcessRole, env: NodeJS.ProcessEnv): string {
  try {
    requireProductionSettings(role, env);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`${role} started with ${JSON.stringify(env)}`);
}

describe('requireProductionSettings', () => {
  test('outside production nothing is required: the development defaults work', () => {
    for (const role of ['api', 'services', 'worker'] as const) {
      requireProductionSettings(role, {});
      requireProductionSettings(role, { NODE_ENV: 'development', FAULT_INJECTION: 'on' });
    }
    const config = loadConfig({});
    assert.deepEqual(config.serviceKeys, [DEV_SERVICE_KEY]);
    assert.deepEqual(config.pspApiKeys, [DEV_PSP_API_KEY]);
    assert.deepEqual(config.webhook.secrets, [DEV_WEBHOOK_SECRET]);
    assert.equal(config.faultInjection, false, 'fault injection is off unless FAULT_INJECTION=on');
    assert.equal(loadConfig({ FAULT_INJECTION: 'on' }).faultInjection, true);
  });

  test('production with everything configured starts', () => {
    for (const role of ['api', 'services', 'worker'] as const) requireProductionSettings(role, CONFIGURED);
  });

  for (const [role, names] of Object.entries(REQUIRED) as [ProcessRole, string[]][]) {
    test(`${role}: production without its settings names every missing one`, () => {
      const message = refusal(role, { NODE_ENV: 'production' });
      for (const name of names) assert.match(message, new RegExp(`${name} is not set`), message);
    });

    test(`${role}: each setting missing on its own is named`, () => {
      for (const name of names) {
        const message = refusal(role, { ...CONFIGURED, [name]: '' });
        assert.match(message, new RegExp(`${name} is not set`), message);
        for (const other of names.filter((n) => n !== name)) assert.doesNotMatch(message, new RegExp(`\\b${other}\\b`), message);
      }
    });
  }

  test('production with a development default, even beside a real value, is refused', () => {
    const cases: [ProcessRole, string, string][] = [
      ['api', 'PSP_WEBHOOK_SECRETS', `whsec_live_1,${DEV_WEBHOOK_SECRET}`],
      ['api', 'SERVICE_API_KEYS', DEV_SERVICE_KEY],
      ['services', 'SERVICE_API_KEYS', `svc_live_1,${DEV_SERVICE_KEY}`],
      ['services', 'PSP_API_KEYS', DEV_PSP_API_KEY],
      ['services', 'PSP_WEBHOOK_SECRET', DEV_WEBHOOK_SECRET],
      ['worker', 'SERVICE_API_KEYS', DEV_SERVICE_KEY],
      ['worker', 'PSP_API_KEYS', DEV_PSP_API_KEY],
      ['api', 'PSP_API_KEYS', DEV_PSP_API_KEY],
      ['api', 'PAYLOAD_ENCRYPTION_KEYS', `live-1:${Buffer.alloc(32, 1).toString('base64')},${DEV_PAYLOAD_KEYS}`],
      ['api', 'REQUEST_FINGERPRINT_SECRET', DEV_FINGERPRINT_SECRET],
      ['worker', 'PAYLOAD_ENCRYPTION_KEYS', DEV_PAYLOAD_KEYS],
    ];
    for (const [role, name, value] of cases) {
      assert.match(refusal(role, { ...CONFIGURED, [name]: value }), new RegExp(`${name} holds the development default`));
    }
  });

  test('a malformed payload key ring is refused without echoing key material', () => {
    const secret = Buffer.alloc(16, 7).toString('base64');
    for (const raw of [`short:${secret}`, 'no-colon', `a:${Buffer.alloc(32).toString('base64')},a:${Buffer.alloc(32).toString('base64')}`]) {
      assert.throws(
        () => loadConfig({ PAYLOAD_ENCRYPTION_KEYS: raw }),
        (err: Error) => /PAYLOAD_ENCRYPTION_KEYS/.test(err.message) && !err.message.includes(secret),
      );
    }
    const ring = loadConfig({ PAYLOAD_ENCRYPTION_KEYS: CONFIGURED.PAYLOAD_ENCRYPTION_KEYS }).payloadKeys;
    assert.equal(ring.encryptWith, 'live-2', 'the first key encrypts');
    assert.deepEqual([...ring.keys.keys()], ['live-2', 'live-1'], 'every listed key decrypts');
  });

  test('production refuses the debug switches', () => {
    for (const role of ['api', 'services', 'worker'] as const) {
      assert.match(refusal(role, { ...CONFIGURED, FAULT_INJECTION: 'on' }), /FAULT_INJECTION=on/);
    }
  });
});

/** Runs an entry point as its own process and collects what it printed until it exits (or is killed). */
function run(entry: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    // a process that did not refuse would keep running: give up on it rather than hang the suite
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The test runner's environment without any of the settings (nor a database to reach by accident). */
function productionWithoutSecrets(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' };
  for (const name of [...new Set(Object.values(REQUIRED).flat()), 'FAULT_INJECTION']) delete env[name];
  return env;
}

describe('a production process refuses to start without its settings', () => {
  for (const [entry, role] of [
    ['services/main.ts', 'services'],
    ['api/main.ts', 'api'],
    ['workers/main.ts', 'worker'],
  ] as const) {
    test(`${entry} exits 1 naming ${REQUIRED[role].join(', ')}`, async () => {
      const { code, output } = await run(entry, productionWithoutSecrets());
      assert.equal(code, 1, output);
      assert.match(output, /refusing to start in production/, output);
      for (const name of REQUIRED[role]) assert.match(output, new RegExp(name), output);
    });
  }

  test('services/main.ts also refuses the development service key', async () => {
    const { code, output } = await run('services/main.ts', {
      ...productionWithoutSecrets(),
      SERVICE_API_KEYS: DEV_SERVICE_KEY,
      PSP_API_KEYS: 'sk_live_1',
      PSP_WEBHOOK_SECRET: 'whsec_live_1',
    });
    assert.equal(code, 1, output);
    assert.match(output, /SERVICE_API_KEYS holds the development default/, output);
    assert.doesNotMatch(output, /PSP_API_KEYS|PSP_WEBHOOK_SECRET/, output);
  });
});
