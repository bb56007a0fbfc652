"""parse_model_source: accepted spellings, and refusals before any connection (S8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.hf_mirror import Canary

from regolo.server.errors import InvalidRequest
from regolo.server.hub.sources import ModelSource, parse_model_source

HUB = "https://huggingface.co"


def parse(text: str, *, endpoint: str = HUB, roots: list[Path] | None = None) -> ModelSource:
    return parse_model_source(text, hf_endpoint=endpoint, allowed_local_roots=roots or [])


@pytest.mark.parametrize(
    ("text", "repo_id", "revision"),
    [
        ("https://huggingface.co/meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf", "main"),
        ("https://huggingface.co/meta-llama/Llama-2-7b-hf/", "meta-llama/Llama-2-7b-hf", "main"),
        ("https://www.huggingface.co/org/name", "org/name", "main"),
        ("https://huggingface.co/org/name/tree/v1.0", "org/name", "v1.0"),
        ("https://huggingface.co/org/name/tree/refs/pr/3", "org/name", "refs/pr/3"),
        ("https://huggingface.co/org/name?library=transformers#files", "org/name", "main"),
        ("HTTPS://HuggingFace.co/org/name", "org/name", "main"),
        ("org/name", "org/name", "main"),
        ("org/name@dev", "org/name", "dev"),
        ("hf://org/name", "org/name", "main"),
        ("hf://org/name@" + "a" * 40, "org/name", "a" * 40),
        ("  Qwen/Qwen2.5-0.5B-Instruct  ", "Qwen/Qwen2.5-0.5B-Instruct", "main"),
    ],
)
def test_hub_sources(text: str, repo_id: str, revision: str) -> None:
    source = parse(text)
    assert (source.kind, source.repo_id, source.revision) == ("hf", repo_id, revision)
    assert source.display_name == repo_id.split("/")[1]
    assert source.uri == f"hf://{repo_id}@{revision}"


def test_configured_mirror_host_is_accepted() -> None:
    source = parse("https://hf-mirror.example/org/name", endpoint="https://hf-mirror.example")
    assert source.repo_id == "org/name"
    source = parse("http://127.0.0.1:8099/org/name/tree/dev", endpoint="http://127.0.0.1:8099")
    assert (source.repo_id, source.revision) == ("org/name", "dev")


def test_mirror_with_path_prefix() -> None:
    endpoint = "https://proxy.example/hf"
    assert parse("https://proxy.example/hf/org/name", endpoint=endpoint).repo_id == "org/name"
    with pytest.raises(InvalidRequest):
        parse("https://proxy.example/other/org/name", endpoint=endpoint)


REFUSED = [
    "",
    "   ",
    "https://evil.example/org/name",
    "https://huggingface.co.evil.example/org/name",
    "https://huggingface.co@evil.example/org/name",
    "https://user:pass@huggingface.co/org/name",
    "http://huggingface.co/org/name",
    "https://huggingface.co:8443/org/name",
    "ftp://huggingface.co/org/name",
    "file:///etc/passwd",
    "https://huggingface.co/org",
    "https://huggingface.co/org/name/blob/main/config.json",
    "https://huggingface.co/org/%2e%2e",
    "https://huggingface.co/../../etc/passwd",
    "https://huggingface.co/org/name/tree/../../x",
    "https://huggingface.co\\@evil.example/org/name",
    "https://huggingface.co/org/name\x00",
    "org/name/extra",
    "../etc/passwd",
    "org/..",
    "org/name@../main",
    "hf://../x",
    "http://127.0.0.1/org/name",
    "http://0177.0.0.1/org/name",
    "http://2130706433/org/name",
    "http://0x7f000001/org/name",
    "http://[::ffff:7f00:1]/org/name",
    "http://169.254.169.254/latest/meta-data",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("text", REFUSED)
def test_refused_sources_are_400_on_url(text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(text)
    assert info.value.status_code == 400
    assert info.value.param == "url"
    assert info.value.message


def test_refusals_open_no_connection() -> None:
    with Canary() as canary:
        port = canary.port
        attempts = [
            f"http://127.0.0.1:{port}/org/name",
            f"https://127.0.0.1:{port}/org/name",
            f"http://localhost:{port}/org/name",
            f"http://2130706433:{port}/org/name",
            f"http://0x7f000001:{port}/org/name",
            f"http://0177.0.0.1:{port}/org/name",
            f"http://[::ffff:7f00:1]:{port}/org/name",
            f"https://huggingface.co@127.0.0.1:{port}/org/name",
            f"http://127.0.0.1:{port}@huggingface.co/org/name",
        ]
        for text in attempts:
            with pytest.raises(InvalidRequest):
                parse(text, endpoint="http://127.0.0.1:1")
    assert canary.connections == 0


def test_local_directory_and_gguf_inside_roots(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "tiny").mkdir(parents=True)
    (root / "one.gguf").write_bytes(b"GGUF")
    directory = parse(str(root / "tiny"), roots=[root])
    assert (directory.kind, directory.local_path, directory.display_name) == (
        "local",
        (root / "tiny").resolve(),
        "tiny",
    )
    gguf = parse(f"file://{root / 'one.gguf'}", roots=[root])
    assert gguf.local_path == (root / "one.gguf").resolve()
    assert gguf.display_name == "one"


def test_local_paths_outside_roots_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "notes.txt").write_text("x")
    for text in [
        str(outside),
        str(root / ".." / "secret"),
        str(root / "link"),
        str(root / "notes.txt"),
        str(root / "missing"),
        "/etc/passwd",
    ]:
        with pytest.raises(InvalidRequest) as info:
            parse(text, roots=[root])
        assert info.value.param == "url"


def test_local_paths_need_a_configured_root(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        parse(str(tmp_path))
