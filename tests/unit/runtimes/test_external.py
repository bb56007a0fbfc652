from __future__ import annotations

import pytest

from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.external import ExternalRuntime, external_address
from regolo.server.specs import ModelArtifact, ReplicaSpec


def _spec(url: str | None) -> ReplicaSpec:
    return ReplicaSpec(
        replica_id="r-1",
        deployment_id="d-1",
        runtime="external",
        artifact=ModelArtifact(path="-", format="safetensors"),
        external_url=url,
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.0.0.5:8000", "http://10.0.0.5:8000"),
        ("https://llm.example.com/v1/", "https://llm.example.com"),
        ("http://host:1/prefix/", "http://host:1/prefix"),
    ],
)
def test_address(url: str, address: str) -> None:
    assert external_address(_spec(url)) == address


@pytest.mark.parametrize(
    "url", [None, "", "ftp://x", "file:///etc/passwd", "http://", "http://u:p@h/", "http://h/?a=1"]
)
def test_bad_urls_refused(url: str | None) -> None:
    with pytest.raises(ValidationFailed) as caught:
        external_address(_spec(url))
    assert caught.value.param == "external_url"


def test_launches_nothing() -> None:
    with pytest.raises(ValidationFailed):
        ExternalRuntime().launch_command(_spec("http://h"), "127.0.0.1", 1)
