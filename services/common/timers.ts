/** A timer that never keeps the process alive on its own (held responses, simulated latency). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
