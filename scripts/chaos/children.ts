// The harness's child processes (services, worker, API): started with their output in a log
// file, considered up once a line says so, stopped gracefully or killed outright. Every child
// is tracked, so whatever happens the harness can kill what it started before it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Child {
  name: string;
  process: ChildProcess;
  logFile: string;
  /** Resolves once the process has exited (immediately if it already has). */
  exited(): Promise<void>;
}

const running = new Set<ChildProcess>();

/**
 * Starts `node --import tsx <entry>` and resolves once a line of its output matches `ready`;
 * rejects (after killing it) if it exits first or does not get there within `timeoutMs`.
 */
export async function startChild(opts: {
  name: string;
  entry: string;
  env: NodeJS.ProcessEnv;
  logDir: string;
  ready: RegExp;
  timeoutMs: number;
}): Promise<Child> {
  const logFile = path.join(opts.logDir, `${opts.name}.log`);
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, opts.entry)], {
    cwd: ROOT,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  exit.then(() => log.end(), () => {});
  const handle: Child = {
    name: opts.name,
    process: child,
    logFile,
    exited: () => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : exit),
  };

  await new Promise<void>((resolve, reject) => {
    let seen = '';
    let up = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.name} did not start within ${opts.timeoutMs / 1000} s; see ${logFile}`));
    }, opts.timeoutMs);
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      if (up) return;
      seen = (seen + chunk.toString()).slice(-4096);
      if (opts.ready.test(seen)) {
        up = true;
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${opts.name} exited while starting (${signal ?? code}); see ${logFile}`));
    });
  });
  return handle;
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(child: Child | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await child.exited();
  clearTimeout(timer);
}

/** SIGKILL: no draining, no goodbye — a crash as the operating system would cause it. */
export async function killChild(child: Child): Promise<void> {
  child.process.kill('SIGKILL');
  await child.exited();
}

/** Last resort on the way out (also from a synchronous `exit` handler): kill everything still running. */
export function killAllChildren(): void {
  for (const child of running) child.kill('SIGKILL');
}
