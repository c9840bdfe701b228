#!/usr/bin/env bash
# Debian's chromium for the browser test of the operations page (tests/e2e), which drives it
# with playwright-core: no browser download, nothing from outside the Debian archive. Instant
# when it is already installed. Without apt-get or root it warns and leaves the decision to
# the browser test, which fails naming this script, so the other tests still run.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
[[ -x "$CHROMIUM" ]] && exit 0

warn() { echo "install-chromium: $*; the browser test (tests/e2e) will fail until $CHROMIUM exists" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then warn "no apt-get here"; exit 0; fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  warn "not root and no password-less sudo"; exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install() { "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >&2; }
echo "installing Debian's chromium (apt-get)" >&2
# the package lists of a fresh machine may be missing or stale: refresh them only if needed
if ! install; then
  "${as_root[@]}" apt-get update -q >&2
  install
fi
[[ -x "$CHROMIUM" ]] || { warn "apt-get installed chromium but $CHROMIUM is missing"; exit 1; }
