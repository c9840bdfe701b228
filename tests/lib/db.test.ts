// A database connection cut under the process (PostgreSQL restart, pg_terminate_backend)
// fails the query in flight; it must never take the whole service down with it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase('cf_db');
});
after(async () => {
  await database.drop();
});

async function terminateConnectionsTo(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rowCount } = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return rowCount ?? 0;
  } finally {
    await admin.end();
  }
}

test('connections cut in every state (idle, querying, in a transaction) fail queries, not the process', async () => {
  const { db } = database;
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  try {
    let terminated = 0;
    for (let round = 0; round < 20; round++) {
      // started now (a Prisma query runs only once awaited), their failures expected
      const work = Array.from({ length: 12 }, async (_, i) =>
        i % 3 === 0
          ? await db.$transaction(async (tx) => {
              await tx.$queryRaw`SELECT pg_sleep(0.02)`;
              return tx.$queryRaw`SELECT 1`;
            })
          : await db.$queryRaw`SELECT pg_sleep(${(i % 4) * 0.01})`,
      ).map((query) => query.catch(() => 'cut'));
      await new Promise((resolve) => setTimeout(resolve, round % 5));
      terminated += await terminateConnectionsTo(database.url);
      await Promise.allSettled(work);
      // and the idle connections left in the pool are cut too
      terminated += await terminateConnectionsTo(database.url);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(terminated > 20, `the test cut ${terminated} connections; it must cut some to mean anything`);
    assert.deepEqual(crashes, []);
    // the pool recovers: fresh connections replace the cut ones
    const rows = await db.$queryRaw<{ one: number }[]>`SELECT 1 AS one`;
    assert.equal(rows[0]?.one, 1);
  } finally {
    process.off('uncaughtException', onCrash);
  }
});
