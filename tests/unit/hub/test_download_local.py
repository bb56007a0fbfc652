"""resolve/download for local sources: no network, files chosen the same way as for the hub."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.hf_mirror import write_tiny_llama

from regolo.server.hub.download import download, resolve
from regolo.server.hub.failures import DownloadFailed
from regolo.server.hub.sources import parse_model_source


def local(path: Path, root: Path):
    return parse_model_source(
        str(path), hf_endpoint="http://127.0.0.1:1", allowed_local_roots=[root]
    )


def test_local_safetensors_directory(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny")
    (tmp_path / "outside.txt").write_text("x")
    (tmp_path / "tiny" / "leak.safetensors").symlink_to(tmp_path / "outside.txt")
    resolved = resolve(
        local(tmp_path / "tiny", tmp_path), token=None, hf_endpoint="http://127.0.0.1:1"
    )
    assert resolved.commit_sha is None and resolved.format == "safetensors"
    assert "leak.safetensors" not in {f.name for f in resolved.files}
    assert [f.name for f in resolved.chosen if f.name.endswith(".safetensors")] == [
        "model.safetensors"
    ]
    assert download(resolved, tmp_path / "unused") == (tmp_path / "tiny").resolve()
    assert not (tmp_path / "unused").exists()


def test_local_gguf_file_and_directory(tmp_path: Path, demo_gguf: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "m.Q4_1.gguf").symlink_to(demo_gguf)
    # The symlink leaves the root, so the file does not count: nothing to serve.
    with pytest.raises(DownloadFailed) as info:
        resolve(local(tmp_path / "d", tmp_path), token=None, hf_endpoint="http://127.0.0.1:1")
    assert info.value.reason_code == "unsupported_format"

    (tmp_path / "d" / "m.Q4_1.gguf").unlink()
    (tmp_path / "d" / "m.Q4_1.gguf").write_bytes(demo_gguf.read_bytes()[:4096])
    resolved = resolve(
        local(tmp_path / "d", tmp_path), token=None, hf_endpoint="http://127.0.0.1:1"
    )
    assert resolved.format == "gguf"
    assert download(resolved, tmp_path / "x") == (tmp_path / "d" / "m.Q4_1.gguf").resolve()

    single = resolve(
        local(tmp_path / "d" / "m.Q4_1.gguf", tmp_path),
        token=None,
        hf_endpoint="http://127.0.0.1:1",
    )
    assert single.weights_file == "m.Q4_1.gguf"
    assert download(single, tmp_path / "x") == (tmp_path / "d" / "m.Q4_1.gguf").resolve()
