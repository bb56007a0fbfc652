"""Issue 3 through the API: add a model by its Hugging Face URL, watch it download, size it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

import regolo
from tests.support.hf_mirror import Canary, HubMirror, write_tiny_llama
from tests.support.live import LiveServer, live_server

SHA = "c0ffee00" * 5


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubMirror]:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with HubMirror() as mirror:
        write_tiny_llama(tmp_path / "tiny")
        mirror.add_directory("acme/tiny-llama", tmp_path / "tiny", sha=SHA)
        yield mirror


@pytest.fixture
def server(home: Path, hub: HubMirror) -> Iterator[LiveServer]:
    with live_server(home, hf_endpoint=hub.endpoint) as live:
        yield live


def _wait_version(server: LiveServer, name: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 60
    with server.client() as http:
        while time.monotonic() < deadline:
            version = http.get(f"/v1/library/models/{name}").json()["versions"][-1]
            if version["status"] != "downloading":
                return version  # type: ignore[no-any-return]
            time.sleep(0.2)
    raise AssertionError("download did not finish")


def test_add_by_hugging_face_url_downloads_pins_and_inspects(server: LiveServer) -> None:
    with server.client() as http:
        added = http.post(
            "/v1/library/models", json={"url": "https://huggingface.co/acme/tiny-llama"}
        )
        assert added.status_code == 201, added.text
        assert added.json()["model"] == "tiny-llama"
        assert added.json()["version"] == "1.0"
        assert added.json()["commit_sha"] == SHA
        version = _wait_version(server, "tiny-llama")
        assert version["status"] == "ready", version
        progress = version["progress"]
        assert progress["bytes_done"] == progress["bytes_total"] > 0
        assert progress["files_done"] == progress["files_total"] > 0
        facts = version["facts"]
        assert facts["format"] == "safetensors"
        assert facts["task"] == "text-generation"
        assert facts["architecture"] == "LlamaForCausalLM"
        assert facts["parameter_count"] > 0

        fits = http.get("/v1/library/models/tiny-llama/versions/1.0/instances").json()["data"]
        assert fits[0]["fits"] and fits[0]["instance_type"].startswith("cpu")
        again = http.post(
            "/v1/library/models", json={"url": "https://huggingface.co/acme/tiny-llama"}
        )
        assert again.status_code == 409
        second = http.post(
            "/v1/library/models",
            json={"url": "hf://acme/tiny-llama@main", "name": "tiny-llama", "version": "1.1"},
        )
        assert second.status_code == 201, second.text
        assert [
            v["version"] for v in http.get("/v1/library/models/tiny-llama").json()["versions"]
        ] == [
            "1.0",
            "1.1",
        ]


def test_sdk_add_model_and_instances(server: LiveServer) -> None:
    client = regolo.RegoloClient(api_key=server.admin_key, base_url=server.base_url)
    added = client.add_model("https://huggingface.co/acme/tiny-llama", name="tiny")
    assert added.version == "1.0"
    instances = {i.id: i for i in client.list_instances()}
    assert instances["cpu-small"].available
    assert not instances["a100-40gb-x1"].available
    assert str(instances["a100-40gb-x1"].price_per_hour) == "0.50"


def test_missing_repo_fails_clearly_before_any_row(server: LiveServer, hub: HubMirror) -> None:
    with server.client() as http:
        missing = http.post("/v1/library/models", json={"url": "https://huggingface.co/acme/nope"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert http.get("/v1/library/models").json()["data"] == []


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/acme/tiny-llama",
        "https://127.0.0.1:{port}/acme/tiny-llama",
        "https://huggingface.co@127.0.0.1:{port}/acme/tiny-llama",
        "http://2130706433:{port}/x/y",
        "http://0177.0.0.1:{port}/x/y",
        "http://[::ffff:7f00:1]:{port}/x/y",
        "http://169.254.169.254/latest/meta-data",
        "https://evil.example/acme/tiny-llama",
        "file:///etc/passwd",
        "/etc/passwd",
        "../../etc/passwd",
        "acme/../../etc",
    ],
)
def test_ssrf_and_traversal_are_refused_without_a_connection(
    server: LiveServer, template: str
) -> None:
    with Canary() as canary, server.client() as http:
        response = http.post("/v1/library/models", json={"url": template.format(port=canary.port)})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "url"
        assert canary.connections == 0
