// The committed SQL migrations must build exactly the database schema.prisma
// describes: same tables, columns, nullability, types, enums and unique keys.
// (Prisma's own `migrate diff` needs a native engine that cannot be downloaded
// here, so this compares the migrated database with the schema's DMMF directly.)
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

const require = createRequire(import.meta.url);
const schemaWasm = require('@prisma/prisma-schema-wasm') as { get_dmmf(params: string): string };

interface DmmfField { name: string; dbName?: string | null; kind: string; type: string; isRequired: boolean; isList: boolean }
interface DmmfModel { name: string; dbName: string | null; fields: DmmfField[] }
interface DmmfIndex { model: string; type: 'id' | 'unique' | 'normal' | 'fulltext'; fields: { name: string }[] }
interface Dmmf { datamodel: { models: DmmfModel[]; enums: { name: string; values: { name: string }[] }[]; indexes: DmmfIndex[] } }

const PG_TYPE: Record<string, string> = {
  String: 'text', Int: 'integer', BigInt: 'bigint', Boolean: 'boolean',
  DateTime: 'timestamp without time zone', Json: 'jsonb', Float: 'double precision',
};

let t: TestDatabase;
let dmmf: Dmmf;
before(async () => {
  t = await createTestDatabase();
  const schema = await readFile(new URL('../prisma/schema.prisma', import.meta.url), 'utf8');
  dmmf = JSON.parse(schemaWasm.get_dmmf(JSON.stringify({ prismaSchema: schema })));
});
after(() => t.drop());

const tableOf = (model: DmmfModel) => model.dbName ?? model.name;
const columnOf = (field: DmmfField) => field.dbName ?? field.name;

async function columns() {
  const rows = await t.db.$queryRawUnsafe<{ table_name: string; column_name: string; is_nullable: string; data_type: string; udt_name: string }[]>(
    `SELECT table_name, column_name, is_nullable, data_type, udt_name FROM information_schema.columns WHERE table_schema = 'public'`,
  );
  const byTable = new Map<string, Map<string, (typeof rows)[number]>>();
  for (const row of rows) {
    if (!byTable.has(row.table_name)) byTable.set(row.table_name, new Map());
    byTable.get(row.table_name)!.set(row.column_name, row);
  }
  return byTable;
}

test('every table and column in the database is declared in schema.prisma, and vice versa', async () => {
  const db = await columns();
  db.delete('_prisma_migrations');
  assert.deepEqual([...db.keys()].sort(), dmmf.datamodel.models.map(tableOf).sort());
  for (const model of dmmf.datamodel.models) {
    const scalars = model.fields.filter((f) => f.kind !== 'object');
    assert.deepEqual([...db.get(tableOf(model))!.keys()].sort(), scalars.map(columnOf).sort(), `columns of ${tableOf(model)}`);
  }
});

test('column types and nullability match the schema', async () => {
  const db = await columns();
  for (const model of dmmf.datamodel.models) {
    for (const field of model.fields.filter((f) => f.kind !== 'object')) {
      const where = `${tableOf(model)}.${columnOf(field)}`;
      const column = db.get(tableOf(model))!.get(columnOf(field))!;
      assert.equal(column.is_nullable === 'NO', field.isRequired, `nullability of ${where}`);
      if (field.kind === 'enum') assert.equal(column.udt_name, field.type, `enum type of ${where}`);
      else assert.equal(column.data_type, PG_TYPE[field.type], `type of ${where}`);
    }
  }
});

test('enums have exactly the schema values, in order', async () => {
  const rows = await t.db.$queryRawUnsafe<{ typname: string; labels: string[] }[]>(
    `SELECT t.typname::text AS typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
  );
  const db = Object.fromEntries(rows.map((r) => [r.typname, r.labels]));
  const schema = Object.fromEntries(dmmf.datamodel.enums.map((e) => [e.name, e.values.map((v) => v.name)]));
  assert.deepEqual(db, schema);
});

test('every id and unique key in the schema is enforced by a unique index', async () => {
  const rows = await t.db.$queryRawUnsafe<{ table_name: string; columns: string[] }[]>(
    `SELECT c.relname::text AS table_name,
            array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)) AS columns
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
      WHERE i.indisunique
      GROUP BY i.indexrelid, c.relname`,
  );
  const unique = new Set(rows.map((r) => `${r.table_name}(${r.columns.join(',')})`));
  const models = new Map(dmmf.datamodel.models.map((m) => [m.name, m]));
  for (const index of dmmf.datamodel.indexes.filter((i) => i.type === 'id' || i.type === 'unique')) {
    const model = models.get(index.model)!;
    const cols = index.fields.map((f) => columnOf(model.fields.find((x) => x.name === f.name)!));
    const key = `${tableOf(model)}(${cols.join(',')})`;
    assert.ok(unique.has(key), `missing unique index ${key}`);
  }
});
