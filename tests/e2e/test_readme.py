"""Every usage example in the README runs against a live platform as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.live import live_server

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.DOTALL)


def readme_blocks() -> list[tuple[str, str]]:
    blocks = BLOCK.findall(README.read_text())
    # The set-up block (start/test scripts) is exercised by CI itself, not here.
    return [(lang, code) for lang, code in blocks if "scripts/start.sh" not in code]


def test_readme_examples_run(home: Path) -> None:
    blocks = readme_blocks()
    assert {lang for lang, _ in blocks} == {"bash", "python"}
    with live_server(home, demo=True) as server:
        server.wait_ready("demo")
        env = {
            **os.environ,
            "HOME": str(home.parent),  # the README reads ~/.regolo/admin-key
            "REGOLO_BASE_URL": server.base_url,
        }
        (home.parent / ".regolo").mkdir(exist_ok=True)
        (home.parent / ".regolo" / "admin-key").write_text(server.admin_key + "\n")
        outputs = []
        exports = "\n".join(
            line
            for lang, code in blocks
            if lang == "bash"
            for line in code.splitlines()
            if line.startswith("export ")
        )
        for lang, code in blocks:
            if lang == "bash":
                script = code.replace("http://127.0.0.1:8000", server.base_url)
                command = ["bash", "-euo", "pipefail", "-c", script]
            else:
                command = [sys.executable, "-c", code]
                env["REGOLO_API_KEY"] = server.admin_key
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{lang} block failed:\n{code}\n{result.stderr}"
            outputs.append(result.stdout)
        assert exports
        assert '"choices"' in outputs[0]
        assert "demo ready" in outputs[1]
