#!/usr/bin/env bash
# Start Regolo Endpoints on http://127.0.0.1:8000 with the demo model deployed.
# Extra arguments go to `regolo serve` (for example --port 8080 or --no-demo).
source "$(dirname "$0")/_venv.sh"
ensure_venv server
exec "$VENV/bin/regolo" serve "$@"
