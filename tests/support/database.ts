// A fresh, migrated PostgreSQL database per test file; dropped afterwards.
import { randomBytes } from 'node:crypto';
import { createDb, type Db } from '../../lib/db.ts';
import { dropDatabase, ensureDatabase, migrate } from '../../scripts/migrate.ts';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'cf_test'): Promise<TestDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl);
  const db = createDb(databaseUrl);
  return {
    url: databaseUrl,
    db,
    async drop() {
      await db.$disconnect();
      await dropDatabase(databaseUrl);
    },
  };
}
