// The PSP's background loop: every tick it starts each job that is not still
// running from the previous tick, so a slow webhook endpoint never holds up
// decisions. All state is in the database; stopping only ends this process's share.
export type Job = (signal: AbortSignal) => Promise<unknown>;

export interface Poller {
  /** Stops the timer, aborts in-flight work and waits for it to settle. */
  stop(): Promise<void>;
}

export function startPoller(jobs: Record<string, Job>, intervalMs: number, log: (message: string, err: unknown) => void): Poller {
  const abort = new AbortController();
  const running = new Map<string, Promise<void>>();
  const lastError = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;

  const run = (name: string, job: Job) => {
    const attempt = job(abort.signal).then(
      () => void lastError.delete(name),
      (err: unknown) => {
        if (abort.signal.aborted) return;
        // a database outage would otherwise log every tick
        const message = String((err as Error)?.message ?? err);
        if (lastError.get(name) !== message) log(`${name} failed`, err);
        lastError.set(name, message);
      },
    );
    running.set(name, attempt.finally(() => running.delete(name)));
  };

  const tick = () => {
    for (const [name, job] of Object.entries(jobs)) if (!running.has(name)) run(name, job);
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  tick();

  return {
    async stop() {
      clearTimeout(timer);
      abort.abort();
      await Promise.allSettled([...running.values()]);
    },
  };
}
