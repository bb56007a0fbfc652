"""``regolo endpoints ...`` and ``regolo chat`` as a user runs them, against a live server.

The CLI runs in a subprocess with ``REGOLO_API_KEY``/``REGOLO_BASE_URL``; replicas are
fast fake servers (tests/support/serving_backend.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import LiveServer, live_server
from tests.support.seed_models import register_seed_model
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(300)

REGOLO = str(Path(sys.executable).parent / "regolo")


@pytest.fixture
def server(home: Path) -> Iterator[LiveServer]:
    backend = ServingFakeBackend()
    try:
        with live_server(home, backend=backend) as live:
            with live.client() as http:
                register_seed_model(http)
            yield live
    finally:
        backend.stop_all()


def cli(server: LiveServer, *args: str, stdin: str = "", ok: bool = True) -> str:
    env = {
        **os.environ,
        "REGOLO_API_KEY": server.admin_key,
        "REGOLO_BASE_URL": server.base_url,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [REGOLO, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert (done.returncode == 0) == ok, f"regolo {' '.join(args)} -> {done.returncode}\n{output}"
    return output


def get_json(server: LiveServer, endpoint: str) -> dict[str, Any]:
    return dict(json.loads(cli(server, "endpoints", "get", endpoint, "--json")))


def test_endpoint_lifecycle_from_the_cli(server: LiveServer) -> None:
    out = cli(
        server, "endpoints", "create", "sentiment-api", "--model", "sentiment-classifier",
        "--version", "1.0", "--replicas", "1", "--cpu-request", "500m",
        "--memory-request", "1Gi", "--request-timeout-seconds", "30", "--wait",
    )  # fmt: skip
    assert "sentiment-api" in out and "ready" in out
    listed = cli(server, "endpoints", "list")
    assert "sentiment-api" in listed and "sentiment-classifier" in listed
    assert [e["name"] for e in json.loads(cli(server, "endpoints", "list", "--json"))] == [
        "sentiment-api"
    ]
    endpoint = get_json(server, "sentiment-api")
    assert endpoint["cpu_request"] == "500m" and endpoint["request_timeout_seconds"] == 30

    cli(server, "endpoints", "update", "sentiment-api", "--replicas", "2")
    assert get_json(server, "sentiment-api")["replicas"] == 2

    out = cli(server, "endpoints", "canary", "sentiment-api", "--version", "1.1", "--percent", "5")
    assert "1.1" in out and "5%" in out
    cli(server, "endpoints", "traffic", "sentiment-api", "1.0=50", "1.1=50")
    weights = {
        d["version"]: d["traffic_weight"] for d in get_json(server, "sentiment-api")["deployments"]
    }
    assert weights == {"1.0": 0.5, "1.1": 0.5}
    cli(server, "endpoints", "rollback", "sentiment-api")
    after = get_json(server, "sentiment-api")
    assert after["version"] == "1.0" and [d["version"] for d in after["deployments"]] == ["1.0"]

    bad = cli(server, "endpoints", "traffic", "sentiment-api", "1.0=0.3", ok=False)
    assert "version_traffic" in bad or "sum" in bad

    reply = cli(server, "chat", "sentiment-api", "--message", "This is great!", "--max-tokens", "4")
    assert "tok0" in reply  # the fake replica streams tok0 tok1 ...
    session = cli(server, "chat", "sentiment-api", stdin="hello\n/exit\n")
    assert "tok0" in session

    cli(server, "endpoints", "delete", "sentiment-api", "--yes")
    missing = cli(server, "endpoints", "get", "sentiment-api", ok=False)
    assert "sentiment-api" in missing
