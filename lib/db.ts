import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { createLogger } from './logger.ts';

export type Db = InstanceType<typeof PrismaClient>;

const log = createLogger('db');

/** One Prisma client per process (per database URL), over the pg driver adapter. */
export function createDb(databaseUrl: string): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl });
  // A connection PostgreSQL drops (restart, pg_terminate_backend) emits 'error' on its client.
  // The pool and the adapter listen only while a client is idle or in a transaction; in the
  // moments between, an 'error' with no listener would crash the process. This listener stays
  // for the client's life: the query in flight still fails (and is retried by its caller), and
  // the pool discards the broken client when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err) => log.warn('database connection lost', { error: err.message }));
  });
  pool.on('error', (err) => log.warn('idle database connection lost', { error: err.message }));
  return new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
}
