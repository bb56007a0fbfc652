"""Resolve, download and inspect through the real huggingface_hub client against a local
hub mirror (``HF_ENDPOINT``), plus the SSRF canary checks of RELIABILITY S8."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from regolo.server.errors import InvalidRequest
from regolo.server.hub import download as download_module
from regolo.server.hub.download import ResolvedModel, download, resolve
from regolo.server.hub.failures import DownloadFailed
from regolo.server.hub.inspect import inspect_model
from regolo.server.hub.sources import parse_model_source
from tests.support.hf_mirror import (
    Canary,
    HubMirror,
    MirrorRepo,
    write_safetensors,
    write_tiny_llama,
)

pytestmark = pytest.mark.timeout(120)

SHA = "5ca1ab1e" * 5
TOKEN = "hf_valid_token"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubMirror]:
    # Keep huggingface_hub away from the user's cache and token.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with HubMirror(valid_tokens=(TOKEN,)) as mirror:
        yield mirror


@pytest.fixture
def tiny_repo(hub: HubMirror, tmp_path: Path) -> MirrorRepo:
    write_tiny_llama(tmp_path / "tiny")
    return hub.add_directory("acme/tiny-llama", tmp_path / "tiny", sha=SHA)


def resolve_url(hub: HubMirror, url: str, **kwargs: object) -> ResolvedModel:
    source = parse_model_source(url, hf_endpoint=hub.endpoint, allowed_local_roots=[])
    options = {"token": None, **kwargs}
    return resolve(source, hf_endpoint=hub.endpoint, **options)  # type: ignore[arg-type]


def test_hub_url_downloads_from_the_configured_mirror(
    hub: HubMirror, tiny_repo: MirrorRepo, tmp_path: Path
) -> None:
    resolved = resolve_url(hub, "https://huggingface.co/acme/tiny-llama")
    assert resolved.commit_sha == SHA
    assert resolved.format == "safetensors"
    chosen = {f.name for f in resolved.chosen}
    assert chosen == {
        "README.md",
        "config.json",
        "generation_config.json",
        "tokenizer_config.json",
        "model.safetensors",
    }
    assert "pytorch_model.bin" in {f.name for f in resolved.files}
    expected_bytes = sum(len(tiny_repo.files[name]) for name in chosen)
    assert resolved.total_bytes == expected_bytes

    events: list[tuple[int, int, int, int]] = []
    path = download(resolved, tmp_path / "store", lambda *e: events.append(e))

    assert path == (tmp_path / "store").resolve()
    for name in chosen:
        assert (path / name).read_bytes() == tiny_repo.files[name]
    assert not (path / "pytorch_model.bin").exists()
    assert events[-1] == (expected_bytes, expected_bytes, 5, 5)
    done = [e[0] for e in events]
    assert done == sorted(done) and all(e[1] == expected_bytes for e in events)

    # Everything went to the mirror, and every file request was pinned to the commit.
    file_requests = [r for r in hub.requests if "/resolve/" in r.path]
    assert file_requests and all(f"/resolve/{SHA}/" in r.path for r in file_requests)
    assert not any("pytorch_model.bin" in r.path for r in hub.requests)

    facts = inspect_model(path)
    assert (facts.format, facts.task, facts.architecture) == (
        "safetensors",
        "text-generation",
        "LlamaForCausalLM",
    )
    assert facts.dtype == "float16" and facts.context_length == 256 and facts.has_chat_template


def test_second_download_is_served_locally(
    hub: HubMirror, tiny_repo: MirrorRepo, tmp_path: Path
) -> None:
    resolved = resolve_url(hub, "acme/tiny-llama")
    download(resolved, tmp_path / "store")
    gets_before = sum(r.method == "GET" for r in hub.requests)
    download(resolved, tmp_path / "store")
    assert sum(r.method == "GET" for r in hub.requests) == gets_before  # HEADs only


def test_interrupted_transfer_resumes_with_range(hub: HubMirror, tmp_path: Path) -> None:
    # huggingface_hub writes in DOWNLOAD_CHUNK_SIZE (10 MiB) pieces, so a resume is only
    # visible for a file larger than one piece: 24 MB here, cut after 12 MB.
    write_tiny_llama(tmp_path / "big")
    write_safetensors(tmp_path / "big" / "model.safetensors", {"w": (3000, 4000)})
    repo = hub.add_directory("acme/big", tmp_path / "big", sha=SHA)
    data = repo.files["model.safetensors"]
    repo.cut_once.add("model.safetensors")
    events: list[tuple[int, int, int, int]] = []

    path = download(resolve_url(hub, "acme/big"), tmp_path / "store", lambda *e: events.append(e))

    assert (path / "model.safetensors").read_bytes() == data
    ranges = [r.range for r in hub.requests if r.path.endswith("model.safetensors") and r.range]
    assert ranges == [f"bytes={hf_constants.DOWNLOAD_CHUNK_SIZE}-"]
    assert events[-1][0] == events[-1][1]  # progress ends exactly at the total
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_revision_in_url_is_honoured(hub: HubMirror, tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny")
    hub.add_directory("acme/tiny", tmp_path / "tiny", sha=SHA, refs={"main": "", "v1": SHA})
    resolved = resolve_url(hub, f"{hub.endpoint}/acme/tiny/tree/v1")
    assert resolved.commit_sha == SHA
    assert any(r.path.endswith("/revision/v1") for r in hub.requests)


def _tiny_gguf() -> bytes:
    def string(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
    header += string("general.architecture") + struct.pack("<I", 8) + string("llama")
    header += string("llama.context_length") + struct.pack("<II", 4, 2048)
    header += string("w") + struct.pack("<IQQIQ", 2, 16, 8, 1, 0)
    return header + bytes(256)


def test_gguf_repository_picks_one_quantization(hub: HubMirror, tmp_path: Path) -> None:
    files = {f"m.{q}.gguf": _tiny_gguf() for q in ("Q2_K", "Q4_K_M", "Q8_0")}
    hub.add_repo("acme/m-gguf", MirrorRepo(files={**files, "README.md": b"# m"}, sha=SHA))
    resolved = resolve_url(hub, "https://huggingface.co/acme/m-gguf")
    assert resolved.format == "gguf" and resolved.weights_file == "m.Q4_K_M.gguf"
    path = download(resolved, tmp_path / "store")
    assert path.name == "m.Q4_K_M.gguf" and path.is_file()
    assert not (tmp_path / "store" / "m.Q8_0.gguf").exists()
    facts = inspect_model(path)
    assert (facts.format, facts.parameter_count, facts.context_length) == ("gguf", 128, 2048)

    pinned = resolve_url(hub, "acme/m-gguf", gguf_file="*Q8_0*")
    assert pinned.weights_file == "m.Q8_0.gguf"


def test_xet_metadata_never_bypasses_the_guard(hub: HubMirror, tmp_path: Path) -> None:
    with Canary() as canary:
        write_tiny_llama(tmp_path / "tiny")
        hub.add_directory(
            "acme/xet", tmp_path / "tiny", sha=SHA, xet_cas_url=f"http://127.0.0.1:{canary.port}"
        )
        path = download(resolve_url(hub, "acme/xet"), tmp_path / "store")
        assert (path / "model.safetensors").is_file()
    assert canary.connections == 0


# --- failures ----------------------------------------------------------------------------


def _reason(call) -> str:
    with pytest.raises(DownloadFailed) as info:
        call()
    return info.value.reason_code


def test_failure_reasons(hub: HubMirror, tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny")
    hub.add_directory("acme/gated", tmp_path / "tiny", sha=SHA, gated=True)
    hub.add_directory("acme/private", tmp_path / "tiny", sha=SHA, private=True)
    hub.add_repo(
        "acme/pickles", MirrorRepo(files={"pytorch_model.bin": b"x", "config.json": b"{}"})
    )

    assert _reason(lambda: resolve_url(hub, "acme/gated")) == "gated"
    assert resolve_url(hub, "acme/gated", token=TOKEN).gated
    assert _reason(lambda: resolve_url(hub, "acme/gated", token="hf_wrong")) == "bad_token"
    assert _reason(lambda: resolve_url(hub, "acme/missing")) == "not_found"
    with pytest.raises(DownloadFailed, match="private") as info:
        resolve_url(hub, "acme/private")
    assert info.value.status_code == 404 and info.value.body()["error"]["code"] == "not_found"
    assert resolve_url(hub, "acme/private", token=TOKEN).commit_sha == SHA
    assert _reason(lambda: resolve_url(hub, "acme/gated@nope", token=TOKEN)) == "revision_not_found"
    assert _reason(lambda: resolve_url(hub, "acme/pickles")) == "unsupported_format"


def test_token_is_required_for_gated_download(hub: HubMirror, tmp_path: Path) -> None:
    write_tiny_llama(tmp_path / "tiny")
    repo = hub.add_directory("acme/gated", tmp_path / "tiny", sha=SHA, gated=True)
    resolved = resolve_url(hub, "acme/gated", token=TOKEN)
    assert _reason(lambda: download(resolved, tmp_path / "a")) == "gated"
    path = download(resolved, tmp_path / "b", token=TOKEN)
    assert (path / "model.safetensors").read_bytes() == repo.files["model.safetensors"]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests[-4:])


def test_network_offline_and_disk_full(
    hub: HubMirror, tiny_repo: MirrorRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = parse_model_source("acme/tiny-llama", hf_endpoint=hub.endpoint, allowed_local_roots=[])
    closed = "http://127.0.0.1:1"
    assert _reason(lambda: resolve(source, token=None, hf_endpoint=closed)) == "network"

    resolved = resolve_url(hub, "acme/tiny-llama")

    class Usage:
        free = 10

    monkeypatch.setattr(download_module.shutil, "disk_usage", lambda _: Usage())
    assert _reason(lambda: download(resolved, tmp_path / "full")) == "disk_full"
    monkeypatch.undo()

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    assert _reason(lambda: resolve_url(hub, "acme/tiny-llama")) == "offline"
    assert _reason(lambda: download(resolved, tmp_path / "offline")) == "offline"


# --- S8: the canary must never be contacted -------------------------------------------------


def test_redirect_to_another_host_is_refused(hub: HubMirror, tmp_path: Path) -> None:
    with Canary() as canary:
        write_tiny_llama(tmp_path / "tiny")
        hub.add_directory(
            "acme/redirect",
            tmp_path / "tiny",
            sha=SHA,
            redirect_lfs_to=f"http://127.0.0.1:{canary.port}/steal",
        )
        resolved = resolve_url(hub, "acme/redirect")
        with pytest.raises(DownloadFailed) as info:
            download(resolved, tmp_path / "store")
        assert info.value.reason_code == "host_refused"
        for target in ("http://169.254.169.254/latest", "https://evil.example/x"):
            hub.repos["acme/redirect"].redirect_lfs_to = target
            with pytest.raises(DownloadFailed, match="refused"):
                download(resolved, tmp_path / "store")
    assert canary.connections == 0
    assert not (tmp_path / "store" / "model.safetensors").exists()


def test_user_urls_never_reach_the_canary(hub: HubMirror, tiny_repo: MirrorRepo) -> None:
    with Canary() as canary:
        port = canary.port
        attempts = [
            f"http://127.0.0.1:{port}/acme/tiny-llama",
            f"http://2130706433:{port}/acme/tiny-llama",
            f"http://0177.0.0.1:{port}/acme/tiny-llama",
            f"http://0x7f000001:{port}/acme/tiny-llama",
            f"http://[::ffff:7f00:1]:{port}/acme/tiny-llama",
            f"https://huggingface.co@127.0.0.1:{port}/acme/tiny-llama",
            f"{hub.endpoint}@127.0.0.1:{port}/acme/tiny-llama",
            f"http://127.0.0.1:{port}#@{hub.endpoint.removeprefix('http://')}/acme/tiny-llama",
            "http://169.254.169.254/latest/meta-data/acme/x",
        ]
        for url in attempts:
            with pytest.raises(InvalidRequest):
                resolve_url(hub, url)
        # Another port of the mirror's host is not the mirror: the shared client refuses it.
        with pytest.raises(DownloadFailed, match="refused"):
            _guarded_fetch(f"http://127.0.0.1:{port}/x", hub.endpoint)
    assert canary.connections == 0


def _guarded_fetch(url: str, endpoint: str) -> None:
    """A request through huggingface_hub's shared session, as its code paths make them."""
    from huggingface_hub.utils import get_session

    from regolo.server.hub import http_guard
    from regolo.server.hub.failures import translated_errors
    from regolo.server.hub.safety import HostPolicy

    http_guard.install(HostPolicy.for_endpoint(endpoint))
    with translated_errors("acme/x", has_token=False):
        get_session().get(url)


def test_transformers_checkpoint_through_the_mirror(hub: HubMirror, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=100,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(tmp_path / "saved", safe_serialization=True)
    expected_params = sum(t.numel() for t in model.state_dict().values())
    hub.add_directory("acme/random-llama", tmp_path / "saved", sha=SHA)

    resolved = resolve_url(hub, "https://huggingface.co/acme/random-llama")
    facts = inspect_model(download(resolved, tmp_path / "store"))

    assert facts.architecture == "LlamaForCausalLM" and facts.task == "text-generation"
    assert facts.parameter_count == expected_params
    assert facts.dtype == "float32"
    assert (facts.context_length, facts.num_layers, facts.num_kv_heads, facts.head_dim) == (
        128,
        2,
        2,
        8,
    )
