"""Run the code blocks of a markdown file (the seed, the docs) as a user would.

Blocks are taken from the file at test time, so an edit to the text is tested as
written. Only placeholders for the key and the URLs are replaced; each block runs in
its own subprocess with ``REGOLO_API_KEY`` and ``REGOLO_BASE_URL`` set.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```(\w*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


@dataclass(frozen=True)
class Snippet:
    heading: str  # the nearest heading above the block
    language: str  # "python", "bash", or "" for a plain block
    code: str
    line: int  # where the block starts in the file, 1-based

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{slug}-{self.language or 'text'}-L{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """Every fenced block of ``path`` with the heading it sits under."""
    found: list[Snippet] = []
    heading, language, start = "", None, 0
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(line)
        if language is None:
            if fence:
                language, start, body = fence.group(1), number, []
            elif match := _HEADING.match(line):
                heading = match.group(2)
        elif line.strip() == "```":
            found.append(Snippet(heading, language, "\n".join(body) + "\n", start))
            language = None
        else:
            body.append(line)
    return found


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> str:
        assert self.returncode == 0, f"exit {self.returncode}\n{self.stdout}\n{self.stderr}"
        return self.stdout


def substitute(code: str, replacements: Mapping[str, str]) -> str:
    # Longest first, so a URL is replaced before a shorter one it contains.
    for old in sorted(replacements, key=len, reverse=True):
        code = code.replace(old, replacements[old])
    return code


def run_snippet(
    snippet: Snippet,
    *,
    api_key: str,
    base_url: str,
    replacements: Mapping[str, str],
    epilogue: str = "",
    cwd: Path | None = None,
    timeout: float = 300,
) -> Ran:
    """Run a python or bash block in a subprocess; ``epilogue`` is appended (python only)."""
    code = substitute(snippet.code, replacements) + epilogue
    env = {
        # the venv first, so `python`, `regolo` and the SDK are the ones under test
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "REGOLO_API_KEY": api_key,
        "REGOLO_BASE_URL": base_url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if snippet.language == "python":
        argv = [sys.executable, "-c", code]
    elif snippet.language in ("bash", "sh", "shell"):
        argv = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        raise ValueError(f"cannot run a {snippet.language or 'plain'} block")
    done = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Ran(done.returncode, done.stdout, done.stderr)
