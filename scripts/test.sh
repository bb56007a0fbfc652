#!/usr/bin/env bash
# Run the whole test suite (lint, types, unit, integration, end-to-end, browser).
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) for the store tests; .ci/run starts it.
source "$(dirname "$0")/_venv.sh"

# System tools the tests drive: Chromium for the dashboard, poppler for invoice PDFs.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

ensure_venv server,dev,transformers,ray
cd "$ROOT"
"$VENV/bin/ruff" check src tests benchmarks
"$VENV/bin/mypy" src
exec "$VENV/bin/python" -m pytest "$@"
