#!/usr/bin/env bash
# Generates the Prisma client into generated/prisma. Prisma 7's CLI insists on
# downloading a schema-engine binary first even though `generate` never runs it;
# pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file skips the download,
# so this works offline (we name this script: it is never executed). The runtime client needs no engine (driver adapter).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f generated/prisma/client.ts && generated/prisma/client.ts -nt prisma/schema.prisma ]]; then exit 0; fi
PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-$PWD/scripts/prisma-generate.sh}" \
  npx --no-install prisma generate >&2
