"""Metrics, health, SLOs and the Prometheus page on a live platform.

Replicas are real HTTP servers (tests/support/serving_backend.py), so every request goes
through the real gateway, usage buffer, flusher loop, health checker and API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import regolo
from regolo.cli.main import app as cli_app
from tests.support.live import LiveServer, live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model, wait_until
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(240)

CHAT = {"messages": [{"role": "user", "content": "This is great!"}], "max_tokens": 4}
N_OK, N_FAILED = 12, 3


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, ServingFakeBackend]]:
    home = tmp_path_factory.mktemp("metrics-home")
    backend = ServingFakeBackend()
    try:
        with live_server(home, backend=backend) as server, server.client() as http:
            register_seed_model(http, versions=("1.0",))
            created = http.post("/v1/endpoints", json={
                "name": "sentiment-api", "model": SEED_MODEL, "version": "1.0", "replicas": 1,
                "cpu_request": "1", "memory_request": "1Gi", "slo_p95_latency_ms": 5000,
                "slo_availability": 99.0, "slo_error_rate": 0.5,
            })  # fmt: skip
            assert created.status_code == 201, created.text
            server.wait_ready("sentiment-api")
            replica_id = backend.running()[0]
            backend.set_usage(replica_id, cpu_cores=0.2, memory_bytes=256 * 2**20)
            _known_load(server, backend, replica_id)
            yield server, backend
    finally:
        backend.stop_all()


def _known_load(server: LiveServer, backend: ServingFakeBackend, replica_id: str) -> None:
    """N_OK good requests and N_FAILED upstream 500s, never two failures in a row (so the
    gateway never ejects the replica)."""
    url = f"{server.base_url}/endpoints/sentiment-api/v1/chat/completions"
    fake = backend.servers[replica_id]
    with httpx.Client(headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30) as http:
        statuses = []
        for i in range(N_OK + N_FAILED):
            failing = i % 5 == 4
            fake.behaviour.mode = "status" if failing else "ok"
            statuses.append(http.post(url, json=CHAT).status_code)
            fake.behaviour.mode = "ok"
    assert statuses.count(500) == N_FAILED and statuses.count(200) == N_OK, statuses


def _metrics(server: LiveServer, time_range: str = "15m") -> dict[str, Any]:
    with server.client() as http:
        response = http.get(
            "/v1/endpoints/sentiment-api/metrics", params={"time_range": time_range}
        )
        assert response.status_code == 200, response.text
        return response.json()


def _flushed(server: LiveServer) -> dict[str, Any]:
    return wait_until(
        lambda: (m := _metrics(server))["request_count"] >= N_OK + N_FAILED and m,
        timeout=30, what="the flusher to write the load",
    )  # fmt: skip


def test_metrics_match_the_known_load(served: tuple[LiveServer, ServingFakeBackend]) -> None:
    server, _ = served
    found = _flushed(server)
    assert found["request_count"] == N_OK + N_FAILED
    assert found["error_count"] == N_FAILED
    assert found["error_rate"] == pytest.approx(N_FAILED / (N_OK + N_FAILED))
    assert found["version"]["1.0"]["request_count"] == N_OK + N_FAILED
    assert 0 < found["p50_latency_ms"] <= found["p95_latency_ms"] <= found["p99_latency_ms"]
    assert 0 < found["availability"] <= 1
    assert sum(p["request_count"] for p in found["series"]) == N_OK + N_FAILED
    # the health checker sampled 0.2 of the 1 core requested (0 before the test set it)
    wait_until(lambda: _metrics(server)["cpu_samples"] > 0, timeout=30, what="a cpu sample")
    assert 0 < _metrics(server)["cpu_usage"] <= 0.2 + 1e-9
    with server.client() as http:
        bad = http.get("/v1/endpoints/sentiment-api/metrics", params={"time_range": "2y"})
        assert bad.status_code in (400, 422) and "error" in bad.json()
        assert http.get("/v1/endpoints/nope/metrics").status_code == 404


def test_health_and_slo(served: tuple[LiveServer, ServingFakeBackend]) -> None:
    server, _ = served
    _flushed(server)
    with server.client() as http:
        health = http.get("/v1/endpoints/sentiment-api/health").json()
        slo = http.get("/v1/endpoints/sentiment-api/slo", params={"time_range": "1h"}).json()
    assert health["status"] == "healthy"
    assert (health["ready_replicas"], health["total_replicas"]) == (1, 1)
    assert health["last_check"] is not None
    assert [r["state"] for r in health["replicas"]] == ["ready"]
    names = {o["name"]: o for o in slo["objectives"]}
    assert set(names) == {"availability", "error_rate", "p95_latency_ms"}
    assert names["error_rate"]["met"]  # 20 % of a 50 % target
    assert names["error_rate"]["error_budget_remaining"] == pytest.approx(1 - 0.2 / 0.5)
    assert not names["availability"]["met"]  # 3 failed requests break a 99 % target


def test_prometheus_page(served: tuple[LiveServer, ServingFakeBackend]) -> None:
    server, _ = served
    _flushed(server)
    assert httpx.get(f"{server.base_url}/metrics").status_code == 401
    with server.client("rk_not_a_key") as http:
        assert http.get("/metrics").status_code == 401
    with server.client() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {
        (s.labels["endpoint"], s.labels["version"], s.labels["status"]): s.value
        for s in families["regolo_requests"].samples if s.name == "regolo_requests_total"
    }  # fmt: skip
    assert requests == {
        ("sentiment-api", "1.0", "200"): N_OK,
        ("sentiment-api", "1.0", "500"): N_FAILED,
    }
    latency = families["regolo_request_latency_seconds"]
    inf = [s for s in latency.samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
    assert sum(s.value for s in inf) == N_OK + N_FAILED
    assert {s.labels["endpoint"] for s in inf} == {"sentiment-api"}
    ready = {s.labels["endpoint"]: s.value for s in families["regolo_replicas_ready"].samples}
    total = {s.labels["endpoint"]: s.value for s in families["regolo_replicas_total"].samples}
    assert ready["sentiment-api"] == 1 and total["sentiment-api"] == 1
    assert "regolo_tokens" in families and "regolo_queue_depth" in families
    assert server.admin_key not in response.text


def test_seed_monitoring_and_cost_samples(
    served: tuple[LiveServer, ServingFakeBackend], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = served
    _flushed(server)
    regolo.configure(api_key=server.admin_key, base_url=server.base_url)
    try:
        # --- the seed's "Monitoring Endpoints" samples, verbatim ---
        metrics = regolo.get_endpoint_metrics(
            endpoint_id="sentiment-api",
            time_range="24h"
        )  # fmt: skip

        print(f"Requests: {metrics.request_count}")
        print(f"Average latency: {metrics.avg_latency_ms}ms")
        print(f"Error rate: {metrics.error_rate:.2%}")
        print(f"Availability: {metrics.availability:.2%}")

        health = regolo.check_endpoint_health(endpoint_id="sentiment-api")

        print(f"Status: {health.status}")
        print(f"Replicas ready: {health.ready_replicas} / {health.total_replicas}")
        print(f"Last check: {health.last_check}")

        # --- the seed's "Right-Size Resources" sample, verbatim ---
        metrics = regolo.get_endpoint_metrics(endpoint_id="sentiment-api")

        if metrics.cpu_usage < 0.3:
            print("CPU is underutilized, consider reducing")
            regolo.update_endpoint(
                endpoint_id="sentiment-api",
                cpu_request="1"
            )  # fmt: skip
    finally:
        regolo.configure(api_key="unused", base_url="http://127.0.0.1:9")
    out = capsys.readouterr().out
    assert f"Requests: {N_OK + N_FAILED}" in out
    assert "Error rate: 20.00%" in out
    assert "Availability: " in out and "Average latency: " in out
    assert "Status: healthy" in out and "Replicas ready: 1 / 1" in out
    assert "CPU is underutilized, consider reducing" in out
    print(out)


def test_cli_metrics_and_health(served: tuple[LiveServer, ServingFakeBackend]) -> None:
    server, _ = served
    _flushed(server)
    client = regolo.RegoloClient(api_key=server.admin_key, base_url=server.base_url)
    runner = CliRunner()
    table = runner.invoke(cli_app, ["endpoints", "metrics", "sentiment-api", "--range", "15m"],
                          obj=client, env={"COLUMNS": "200"})  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "sentiment-api over 15m" in table.output and str(N_OK + N_FAILED) in table.output
    assert "requests per 30 s" in table.output
    health = runner.invoke(cli_app, ["endpoints", "health", "sentiment-api"], obj=client)
    assert health.exit_code == 0, health.output
    assert "healthy" in health.output and "ready 1 / 1" in health.output
    bad = runner.invoke(
        cli_app, ["endpoints", "metrics", "sentiment-api", "--range", "2y"], obj=client
    )
    assert bad.exit_code != 0
    client.close()


def test_metrics_token_reads_prometheus_page_and_nothing_else(home: Path) -> None:
    from tests.support.live import live_server as _live

    with _live(home, metrics_token="scrape-secret-123") as server:
        import httpx as _httpx

        page = _httpx.get(
            f"{server.base_url}/metrics", headers={"Authorization": "Bearer scrape-secret-123"}
        )
        assert page.status_code == 200
        assert "regolo_" in page.text
        other = _httpx.get(
            f"{server.base_url}/v1/keys", headers={"Authorization": "Bearer scrape-secret-123"}
        )
        assert other.status_code == 401
        wrong = _httpx.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
