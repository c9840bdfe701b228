// The API's only use of the database: a `SELECT 1` for /healthz.
import pg from 'pg';
import { createLogger } from '../lib/logger.ts';

const log = createLogger('api');

export interface DatabaseCheck {
  check(): Promise<void>;
  close(): Promise<void>;
}

export function createDatabaseCheck(databaseUrl: string, timeoutMs = 2_000): DatabaseCheck {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 2,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  // An idle connection dropped by the server must not crash the process; the next check reports it.
  pool.on('error', (err) => log.error(`database connection lost: ${err.message}`));
  return {
    async check() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
}
