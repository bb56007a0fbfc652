"""The compiled gateway (regolo.server.gateway.speedups): built with mypyc, it passes
the gateway's own tests, and a build stops being used the moment a source changes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from regolo.server.gateway import _build

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(shutil.which("cc") is None, reason="mypyc needs a C compiler"),
]

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_TESTS = [
    "tests/unit/gateway",
    "tests/integration/test_gateway_faults.py",
    "tests/integration/test_gateway_routes.py",
    "tests/integration/test_security_routes.py",
]
RUN_COMPILED = """
import sys
from pathlib import Path

import regolo.server.gateway as gateway
from regolo.server.gateway._build import activate

assert activate(gateway.__path__, Path(sys.argv[1]))
import regolo.server.gateway.app as app

assert app.__file__.endswith(".so"), app.__file__
import pytest

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by the command the README gives (into a scratch root, not the package)."""
    root = tmp_path_factory.mktemp("compiled")
    command = [sys.executable, "-m", "regolo.server.gateway.speedups", "--root", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compiled gateway built in" in done.stdout
    return root


def test_the_compiled_gateway_passes_the_gateway_tests(compiled: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_COMPILED, str(compiled), *GATEWAY_TESTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_a_build_from_other_sources_is_not_used(
    compiled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path: list[str] = []
    assert _build.activate(path, compiled) and path  # the build matches today's sources
    monkeypatch.setattr(_build, "digest", lambda: "an-edited-source")
    assert not _build.activate([], compiled)


def test_remove_deletes_the_builds(tmp_path: Path) -> None:
    (tmp_path / "stale").mkdir()
    command = [sys.executable, "-m", "regolo.server.gateway.speedups", "--remove"]
    done = subprocess.run([*command, "--root", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and not tmp_path.exists()
