import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestDatabase } from './support/database.ts';
import { migrate } from '../scripts/migrate.ts';

test('migrations apply once and a rerun applies nothing', async () => {
  const t = await createTestDatabase();
  try {
    assert.deepEqual(await migrate(t.url), []);
    const rows = await t.db.$queryRawUnsafe<{ migration_name: string }[]>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL',
    );
    assert.ok(rows.length >= 1);
  } finally {
    await t.drop();
  }
});
