// Starts the official Temporal CLI dev server (`temporal server start-dev`) as a
// child process: used by bin/stack (with a state file, so a restart keeps running
// workflows) and by integration tests (in memory, on free ports).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../shared/search-attributes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The CLI installed by scripts/install-temporal.sh (which prefers one on PATH). */
export function temporalCliPath(): string {
  const local = path.join(ROOT, '.tools/bin/temporal');
  if (!existsSync(local)) throw new Error('Temporal CLI missing: run `bash scripts/install-temporal.sh`');
  return local;
}

export function timeSkippingServerPath(): string {
  const local = path.join(ROOT, '.tools/bin/temporal-test-server');
  if (!existsSync(local)) throw new Error('Temporal test server missing: run `bash scripts/install-temporal.sh`');
  return local;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface DevServerOptions {
  port?: number;
  /** Web UI port; omit for a headless server. */
  uiPort?: number;
  /**
   * The codec server the Web UI asks to decode payloads (our API's `/codec`), called from the
   * browser; without it the UI shows payloads as the cluster holds them, encrypted.
   */
  uiCodecEndpoint?: string;
  /** SQLite state file; omit to keep state in memory. */
  dbFilename?: string;
  /** Server output goes here (appended); omit to discard it. */
  logFile?: string;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  if (options.uiPort) args.push('--ui-port', String(options.uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  if (options.uiPort && options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  if (options.dbFilename) {
    mkdirSync(path.dirname(options.dbFilename), { recursive: true });
    args.push('--db-filename', options.dbFilename);
  }
  for (const { name, type } of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${name}=${type}`);

  let stdio: 'ignore' | number = 'ignore';
  if (options.logFile) {
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    stdio = openSync(options.logFile, 'a');
  }
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', stdio, stdio] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${port}`;

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`temporal dev server exited with code ${child.exitCode}${options.logFile ? `; see ${options.logFile}` : ''}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.getSystemInfo({});
        // search attributes are registered once the namespace answers a visibility call
        await connection.workflowService.listWorkflowExecutions({ namespace: 'default', pageSize: 1 });
      } finally {
        await connection.close();
      }
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not become ready at ${address}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  return {
    address,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
