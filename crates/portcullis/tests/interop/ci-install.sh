#!/usr/bin/env bash
# Installs the relying-party interop harness (npm `openid-client`, pinned by package-lock.json)
# next to this script. Idempotent: does nothing when node_modules already matches the lock file.
# Called by .ci/run before `cargo test`; run it by hand once on a development machine.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop: node and npm are required (Node.js 20 or newer)" >&2
  exit 1
fi

stamp=node_modules/.portcullis-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/openid-client ]; then
  echo "interop: node_modules is up to date"
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "interop: installed $(node -p 'require("./node_modules/openid-client/package.json").version' 2>/dev/null || echo openid-client)"
