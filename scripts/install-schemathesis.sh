#!/usr/bin/env bash
# schemathesis (PyPI) in its own virtualenv under .tools/, for the contract test
# (tests/contract/openapi.test.ts), which runs it against /openapi.json of a real stack.
# Pinned; instant when that version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=.tools/venv

installed() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}

[[ -x "$VENV/bin/schemathesis" && "$(installed)" == "$SCHEMATHESIS_VERSION" ]] && exit 0

echo "installing schemathesis==$SCHEMATHESIS_VERSION from PyPI into $VENV" >&2
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  # Debian's python3 needs python3-venv (ensurepip) for this
  python3 -m venv "$VENV" || { echo "install-schemathesis: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "schemathesis==$SCHEMATHESIS_VERSION" >&2
[[ "$(installed)" == "$SCHEMATHESIS_VERSION" ]] || { echo "install-schemathesis: schemathesis $SCHEMATHESIS_VERSION is not importable from $VENV" >&2; exit 1; }
