#!/usr/bin/env bash
# Installs the real third-party servers that the provider tests start by themselves
# (crates/test-upstreams/src/peers/): Debian's OpenLDAP slapd, node oidc-provider (npm) and django-cas-server (PyPI).
#
# Idempotent; runs as root (apt-get). `apt-get update` runs only when a Debian package is missing.
# Paste-able into .ci/run as:   bash crates/test-upstreams/peers/ci-install.sh
# ----- BEGIN provider peers install -----
set -euo pipefail
PEERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# 1. slapd + ldap-utils (Debian). The package's own service start is denied in containers; the tests start their own
#    slapd from a temporary directory and never use /etc/ldap.
if [ ! -x /usr/sbin/slapd ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slapd ldap-utils >/dev/null
fi

# 2. oidc-provider, pinned by package-lock.json, into peers/oidc/node_modules.
if [ ! -d "$PEERS/oidc/node_modules/oidc-provider" ]; then
  command -v npm >/dev/null || { echo "ci-install: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
  (cd "$PEERS/oidc" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 3. django-cas-server in a venv at peers/cas/.venv, plus a migrated and seeded template database that each test run
#    copies (migrating at every start would cost seconds).
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"
VENV="$PEERS/cas/.venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import cas_server' 2>/dev/null; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$PEERS/cas/requirements.txt"
fi
TEMPLATE="$VENV/template.sqlite3"
if [ ! -s "$TEMPLATE" ] || [ -n "$(find "$PEERS/cas/site" -name "*.py" -newer "$TEMPLATE")" ]; then
  rm -f "$TEMPLATE.tmp"
  (cd "$PEERS/cas/site" && CAS_DB="$TEMPLATE.tmp" "$VENV/bin/python" manage.py migrate -v0 \
    && CAS_DB="$TEMPLATE.tmp" "$VENV/bin/python" manage.py shell -c "exec(open('seed.py').read())" >/dev/null)
  mv "$TEMPLATE.tmp" "$TEMPLATE"
fi
echo "ci-install: provider peers ready (slapd, oidc-provider, django-cas-server)"
# ----- END provider peers install -----
