import { defineConfig } from 'prisma/config';

// The CLI is only used for `generate` here (see scripts/prisma-generate.sh);
// migrations are committed SQL applied by scripts/migrate.ts.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/commerce' },
});
