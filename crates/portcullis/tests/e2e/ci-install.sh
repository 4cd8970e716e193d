#!/usr/bin/env bash
# Installs what the browser end-to-end tests (crates/portcullis/tests/it/e2e.rs) need:
# Debian's chromium and CJK fonts (apt; the browser is never downloaded by npm) and the npm
# package playwright-core, pinned by package-lock.json, next to this script.
# Idempotent: does nothing that is already done. Called by .ci/run before `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
  need_apt+=(fonts-noto-cjk)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "e2e: installing ${need_apt[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "e2e: node and npm are required (Node.js 20 or newer)" >&2
  exit 1
fi

stamp=node_modules/.portcullis-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/playwright-core ]; then
  echo "e2e: node_modules is up to date"
  exit 0
fi

# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core never downloads a browser, but say so anyway.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "e2e: installed playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version')"
