"""Every python and bash block of the user guide (docs/*.md) runs, in order, as written.

Blocks are read from the files at test time and run the way the seed samples are
(tests/support/snippets.py): only the key, the server URL and the model file path are
replaced, and a page's blocks share a fresh working directory (a file one block writes,
the next may read). ``console`` blocks show commands that cannot run here (``regolo
serve``, a Hugging Face download) and are not run. Each page gets a fresh platform
whose replicas are fast fake servers: the docs are about the workflow, the seed samples
test covers the real model. docs/seed/ is the product spec, run by test_seed_samples.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from regolo.server.demo import demo_gguf_path
from tests.support.live import LiveServer, live_server
from tests.support.seed_models import register_seed_model
from tests.support.serving_backend import ServingFakeBackend
from tests.support.snippets import Snippet, run_snippet, snippets

pytestmark = pytest.mark.timeout(600)

DOCS = Path(__file__).parents[2] / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
RUNNABLE = ("python", "bash")
SHOWN_ONLY = ("console", "text", "")


def _page_snippets(page: str) -> list[Snippet]:
    return snippets(DOCS / page)


@pytest.fixture
def docs_server(home: Path) -> Iterator[LiveServer]:
    backend = ServingFakeBackend()
    try:
        with live_server(home, demo=True, backend=backend) as server:
            yield server
    finally:
        backend.stop_all()


def test_every_block_is_runnable_or_shown_only() -> None:
    for page in PAGES:
        for snippet in _page_snippets(page):
            assert snippet.language in RUNNABLE + SHOWN_ONLY, (page, snippet.line)


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_in_order(page: str, docs_server: LiveServer, tmp_path: Path) -> None:
    server = docs_server
    model_file = demo_gguf_path()
    assert model_file is not None
    if page == "traffic.md":  # it continues endpoints.md: both versions are in the library
        with server.client() as http:
            register_seed_model(http)
    replacements = {
        "YOUR_API_KEY": server.admin_key,
        "http://127.0.0.1:8000": server.base_url,
        "/path/to/model.gguf": str(model_file),
    }
    workdir = tmp_path / "work"
    workdir.mkdir()
    ran = 0
    for snippet in _page_snippets(page):
        if snippet.language not in RUNNABLE:
            continue
        result = run_snippet(
            snippet,
            api_key=server.admin_key,
            base_url=server.base_url,
            replacements=replacements,
            cwd=workdir,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"{page} line {snippet.line} ({snippet.heading}) exited {result.returncode}\n"
            f"--- code\n{snippet.code}--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
        ran += 1
    assert ran > 0
