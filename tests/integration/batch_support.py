"""Helpers for the batch integration tests: an endpoint backed by a fake replica."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from regolo.server.demo import demo_gguf_path


def add_external_endpoint(http: httpx.Client, name: str, replica_url: str) -> None:
    """A library model (the demo GGUF under another name) served by ``replica_url``."""
    gguf = demo_gguf_path()
    assert gguf is not None, "the demo model is not installed"
    model = f"{name}-model"
    response = http.post(
        "/v1/library/models", json={"url": str(gguf), "name": model, "version": "1.0"}
    )
    assert response.status_code in (200, 201), response.text
    wait_for(
        lambda: http.get(f"/v1/library/models/{model}/versions/1.0").json().get("status") == "ready"
    )
    body = {"name": name, "model": model, "runtime": "external", "external_url": replica_url}
    response = http.post("/v1/endpoints", json=body)
    assert response.status_code in (200, 201), response.text


def wait_for(condition: Any, timeout: float = 60.0, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chat_line(custom_id: str, model: str = "demo", **body: Any) -> dict[str, Any]:
    payload = {"model": model, "messages": [{"role": "user", "content": custom_id}], **body}
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": payload,
    }
