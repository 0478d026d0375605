#!/usr/bin/env bash
# axe-core for the console's accessibility test: tests/axe/node_modules/axe-core, at the version
# pinned in tests/axe/package-lock.json. Idempotent: nothing runs when that version is there.
set -euo pipefail
cd "$(dirname "$0")/../tests/axe"
want=$(node -p 'require("./package-lock.json").packages["node_modules/axe-core"].version' 2>/dev/null || true)
have=$(node -p 'require("./node_modules/axe-core/package.json").version' 2>/dev/null || true)
if [ -n "$want" ] && [ "$want" = "$have" ] && [ -f node_modules/axe-core/axe.min.js ]; then
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "Node.js and npm are needed: make system-deps installs them" >&2
  exit 1
fi
# --ignore-scripts: no package's install script runs (axe-core has none).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "axe-core $(node -p 'require("./node_modules/axe-core/package.json").version') in tests/axe/node_modules"
