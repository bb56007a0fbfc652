#!/usr/bin/env bash
# Run the whole test suite (lint, types, unit, integration, end-to-end, browser).
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) for the store tests; .ci/run starts it.
source "$(dirname "$0")/_venv.sh"
ensure_venv server,dev,transformers
cd "$ROOT"
"$VENV/bin/ruff" check src tests benchmarks
"$VENV/bin/mypy" src
exec "$VENV/bin/python" -m pytest "$@"
