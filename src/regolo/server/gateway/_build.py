"""Which compiled build of the gateway's hot path matches the current sources.

Imported by the package's ``__init__`` (so before any gateway module): see speedups.py,
which makes the builds.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import MutableSequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SERVER_DIR = PACKAGE_DIR.parent
DEFAULT_ROOT = PACKAGE_DIR / "_compiled"
# The hot path. upstream.py stays Python: benchmarks/passthrough.py, the baseline the
# gateway is compared with, runs it too.
COMPILED_MODULES = (
    "app", "auth", "cache", "disconnect", "limits", "picker", "proxy", "request_body",
    "resolve", "responses", "routing_table", "usage",
)  # fmt: skip
COMPLETE = "COMPLETE"  # written last: a build cut short is never used


def digest() -> str:
    """The sources a build depends on (this package, and the modules whose types it
    relies on), and the interpreter it is for."""
    sha = hashlib.sha256(sys.version.encode())
    sources = [*sorted(PACKAGE_DIR.glob("*.py")), SERVER_DIR / "specs.py", SERVER_DIR / "errors.py"]
    for path in sources:
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:20]


def build_dir(root: Path = DEFAULT_ROOT) -> Path:
    return root / digest()


def activate(package_path: MutableSequence[str], root: Path = DEFAULT_ROOT) -> bool:
    """Put the current build first on ``package_path``; False when there is none."""
    build = build_dir(root)
    if not (build / COMPLETE).is_file():
        return False
    modules = build / "regolo" / "server" / "gateway"
    if str(modules) not in package_path:
        package_path.insert(0, str(modules))
        sys.path.append(str(build))  # mypyc's shared runtime module, a uniquely named one
    return True


def deactivate(package_path: MutableSequence[str], root: Path = DEFAULT_ROOT) -> None:
    """Plain Python from now on (benchmarks that replace a gateway method need it)."""
    package_path[:] = [p for p in package_path if not p.startswith(str(root))]
