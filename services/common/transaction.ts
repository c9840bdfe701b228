// The one way services open a database transaction.
import type { Db } from '../../lib/db.ts';

export type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

// Prisma's defaults (wait 2 s for a connection, 5 s to finish) are tuned for quick
// web reads; a burst of row-locking writes on one SKU or coupon queues longer.
const OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;

export function inTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T> {
  return db.$transaction(work, OPTIONS);
}
