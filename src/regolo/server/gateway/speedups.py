"""An optional compiled build of the gateway's hot path (mypyc), used when it matches.

Every request runs the gateway's chain in Python; compiled to C extensions by mypyc the
same modules do the same work in less CPU, by how much depends on the machine (a third
of what they add to a request on one, 3-4% of a request's whole CPU on another:
``benchmarks/gateway.py --compiled`` measures it). The build is opt-in, since it needs
a C compiler and mypy:

    python -m regolo.server.gateway.speedups           # build (about a minute)
    python -m regolo.server.gateway.speedups --remove  # back to pure Python

A build lives in ``_compiled/<digest>/`` inside this package, where ``<digest>`` covers
the sources it was made from (and the modules whose types they rely on) and the Python
version. ``activate`` runs when the package is imported and puts a build first on the
package's path only if its digest is the current one: after any edit of those sources
the gateway runs as plain Python again until the next build, so a stale build is never
used.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from regolo.server.gateway._build import (
    COMPILED_MODULES,
    COMPLETE,
    DEFAULT_ROOT,
    SERVER_DIR,
    build_dir,
    digest,
)


def build(root: Path = DEFAULT_ROOT) -> Path:
    """Compile the hot-path modules with mypyc into ``build_dir(root)``."""
    target = build_dir(root)
    mypyc = shutil.which("mypyc", path=str(Path(sys.executable).parent)) or shutil.which("mypyc")
    if mypyc is None:
        raise SystemExit("mypyc not found: pip install mypy (the dev extra has it)")
    with tempfile.TemporaryDirectory(prefix="regolo-mypyc-") as scratch:
        src = Path(scratch) / "src"
        shutil.copytree(
            SERVER_DIR.parent,
            src / "regolo",
            ignore=shutil.ignore_patterns("__pycache__", "_compiled"),
        )
        modules = [f"regolo/server/gateway/{name}.py" for name in COMPILED_MODULES]
        done = subprocess.run([mypyc, *modules], cwd=src, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"mypyc failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        shutil.rmtree(target, ignore_errors=True)
        (target / "regolo" / "server" / "gateway").mkdir(parents=True)
        for library in src.glob("*__mypyc*.so"):
            shutil.copy2(library, target / library.name)
        for name in COMPILED_MODULES:
            for library in (src / "regolo" / "server" / "gateway").glob(f"{name}.*.so"):
                shutil.copy2(library, target / "regolo" / "server" / "gateway" / library.name)
    (target / COMPLETE).write_text(digest())
    for old in root.iterdir():  # earlier builds can never match again
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--remove", action="store_true", help="delete every build")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.remove:
        shutil.rmtree(args.root, ignore_errors=True)
        print("compiled gateway removed: the gateway runs as plain Python")
        return
    print(f"compiled gateway built in {build(args.root)}")


if __name__ == "__main__":
    main()
