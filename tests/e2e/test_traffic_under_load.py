"""R9 and R10: rollouts under continuous load, and the traffic split the gateway really makes.

Replicas are real HTTP servers (tests/support/serving_backend.py) that start in
milliseconds and say which deployment answered, so the whole control loop (API ->
reconciler -> health checker -> routing table -> gateway) runs as in production.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer, live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model, wait_until
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(300)

CHAT = {"messages": [{"role": "user", "content": "This is great!"}], "max_tokens": 4}


@pytest.fixture
def served(
    home: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[LiveServer, ServingFakeBackend]]:
    backend = ServingFakeBackend(delay_seconds=getattr(request, "param", 0.0))
    try:
        with live_server(home, backend=backend) as server:
            with server.client() as http:
                register_seed_model(http)
            yield server, backend
    finally:
        backend.stop_all()


class Load:
    """Steady clients on an endpoint; every answer is kept (status, who served it)."""

    def __init__(self, server: LiveServer, endpoint: str, clients: int = 4) -> None:
        self.url = f"{server.base_url}/endpoints/{endpoint}/v1/chat/completions"
        self.key = server.admin_key
        self.results: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=30, headers=headers) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(self.url, json=CHAT)
                    result = (response.status_code, _served_by(response))
                except httpx.HTTPError as exc:
                    result = (0, type(exc).__name__)
                with self._lock:
                    self.results.append(result)

    def count(self) -> int:
        with self._lock:
            return len(self.results)

    def failures(self) -> list[tuple[int, str]]:
        with self._lock:
            return [r for r in self.results if r[0] != 200]


def _served_by(response: httpx.Response) -> str:
    if response.status_code != 200:
        return response.text[:200]
    content = response.json()["choices"][0]["message"]["content"]
    return str(content).removeprefix("hello from ").split("/")[0]  # the deployment id


def _endpoint(http: httpx.Client, name: str) -> dict[str, Any]:
    response = http.get(f"/v1/endpoints/{name}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _deployment(http: httpx.Client, name: str, version: str) -> dict[str, Any] | None:
    for deployment in _endpoint(http, name)["deployments"]:
        if deployment["version"] == version:
            return dict(deployment)
    return None


def _ready(http: httpx.Client, name: str, version: str, replicas: int) -> bool:
    deployment = _deployment(http, name, version)
    return deployment is not None and deployment["ready_replicas"] == replicas


def _advance(load: Load, requests: int = 40) -> None:
    """Let the load run a little further so every change is tried under traffic."""
    target = load.count() + requests
    wait_until(lambda: load.count() >= target, timeout=60, what=f"{requests} more requests")


@pytest.mark.parametrize("served", [0.05], indirect=True)  # answers take 50 ms
def test_r9_rollouts_and_scaling_under_load_fail_no_request(
    served: tuple[LiveServer, ServingFakeBackend],
) -> None:
    server, backend = served
    with server.client() as http:
        assert (
            http.post(
                "/v1/endpoints", json={"name": "sentiment-api", "model": SEED_MODEL, "replicas": 2}
            ).status_code
            == 201
        )
        server.wait_ready("sentiment-api", timeout=60)
        stable_id = _deployment(http, "sentiment-api", "1.0")["id"]  # type: ignore[index]
        with Load(server, "sentiment-api") as load:
            _advance(load)
            # scale up, then down: the removed replicas drain first
            http.patch("/v1/endpoints/sentiment-api", json={"replicas": 4}).raise_for_status()
            wait_until(lambda: _ready(http, "sentiment-api", "1.0", 4), what="4 replicas")
            _advance(load)
            http.patch("/v1/endpoints/sentiment-api", json={"replicas": 1}).raise_for_status()
            wait_until(lambda: len(backend.live_replicas(stable_id)) == 1, what="scale-down")
            _advance(load)
            # canary, A/B, blue-green, rollback (the canary is removed while loaded)
            http.post(
                "/v1/endpoints/sentiment-api/canary",
                json={"new_version": "1.1", "traffic_percentage": 30},
            ).raise_for_status()
            wait_until(lambda: _ready(http, "sentiment-api", "1.1", 1), what="canary ready")
            canary_id = _deployment(http, "sentiment-api", "1.1")["id"]  # type: ignore[index]
            _advance(load)
            for split in ({"1.0": 50, "1.1": 50}, {"1.0": 0, "1.1": 1.0}):
                http.put(
                    "/v1/endpoints/sentiment-api/traffic", json={"version_traffic": split}
                ).raise_for_status()
                _advance(load)
            http.post("/v1/endpoints/sentiment-api/rollback", json={}).raise_for_status()
            wait_until(lambda: not backend.live_replicas(canary_id), what="canary drained")
            _advance(load)
            # a second canary, promoted: the old version drains away
            http.post(
                "/v1/endpoints/sentiment-api/canary",
                json={"new_version": "1.1", "traffic_percentage": 50},
            ).raise_for_status()
            wait_until(lambda: _ready(http, "sentiment-api", "1.1", 1), what="canary ready")
            _advance(load)
            http.post("/v1/endpoints/sentiment-api/promote").raise_for_status()
            wait_until(lambda: not backend.live_replicas(stable_id), what="old version drained")
            _advance(load)
        served_by = Counter(who for status, who in load.results if status == 200)
    failures = load.failures()
    print(f"R9: {len(load.results)} requests, {len(failures)} failed, served by {served_by}")
    assert not failures, f"{len(failures)} of {len(load.results)} failed: {failures[:5]}"
    # drained: no replica was stopped with a request in flight
    assert backend.busy_at_stop and not any(backend.busy_at_stop.values()), backend.busy_at_stop
    assert len(load.results) > 300
    assert stable_id in served_by and len(served_by) >= 2  # both versions served


def test_r10_canary_split_within_binomial_tolerance_and_killed_canary(
    served: tuple[LiveServer, ServingFakeBackend],
) -> None:
    server, backend = served
    with server.client() as http:
        http.post(
            "/v1/endpoints", json={"name": "sentiment-api", "model": SEED_MODEL, "replicas": 2}
        ).raise_for_status()
        server.wait_ready("sentiment-api", timeout=60)
        http.post(
            "/v1/endpoints/sentiment-api/canary",
            json={"new_version": "1.1", "traffic_percentage": 20},
        ).raise_for_status()
        wait_until(lambda: _ready(http, "sentiment-api", "1.1", 1), what="canary ready")
        canary_id = _deployment(http, "sentiment-api", "1.1")["id"]  # type: ignore[index]
        counts = _send(server, "sentiment-api", 2000)
        assert sum(counts.values()) == 2000, counts
        share = 0.2
        sigma = math.sqrt(2000 * share * (1 - share))
        observed = counts[canary_id]
        assert abs(observed - 2000 * share) <= 4 * sigma, (observed, counts)
        print(f"R10 observed canary share: {observed}/2000 = {observed / 2000:.3f}")

        # Kill the canary's only replica and keep it from coming back.
        backend.refused_deployments.add(canary_id)
        (replica,) = backend.live_replicas(canary_id)
        with Load(server, "sentiment-api") as load:
            _advance(load)
            backend.kill(replica)
            wait_until(
                lambda: _deployment(http, "sentiment-api", "1.1")["ready_replicas"] == 0,  # type: ignore[index]
                what="canary marked not ready",
            )
            _advance(load)
        # Not asserted: until the health checker sees the canary die, requests drawn for
        # it fail (the gateway retries within a deployment only; see issue 5).
        print(f"R10 kill window: {len(load.failures())} of {load.count()} requests failed")
        after = _send(server, "sentiment-api", 300)
        assert canary_id not in after and sum(after.values()) == 300, after

        # Rollback is immediate: the API answers after the routing table changed.
        backend.refused_deployments.clear()
        wait_until(lambda: _ready(http, "sentiment-api", "1.1", 1), timeout=60, what="canary back")
        http.post("/v1/endpoints/sentiment-api/rollback", json={}).raise_for_status()
        after_rollback = _send(server, "sentiment-api", 200)
        assert canary_id not in after_rollback and sum(after_rollback.values()) == 200


def _send(server: LiveServer, endpoint: str, requests: int, clients: int = 8) -> Counter[str]:
    """``requests`` chat completions from ``clients`` threads; counts by serving deployment."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def run(share: int) -> None:
        url = f"{server.base_url}/endpoints/{endpoint}/v1/chat/completions"
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {server.admin_key}"}) as c:
            for _ in range(share):
                response = c.post(url, json=CHAT)
                key = _served_by(response) if response.status_code == 200 else "failed"
                with lock:
                    counts[key] += 1

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return counts


@pytest.mark.parametrize("served", [0.05], indirect=True)
def test_a_resized_endpoint_rolls_its_replicas_under_load_failing_no_request(
    served: tuple[LiveServer, ServingFakeBackend],
) -> None:
    """The seed's right-sizing (``update_endpoint(cpu_request="1")``) reaches running
    replicas: each is replaced by one started with the new size, one at a time."""
    server, backend = served
    with server.client() as http:
        created = http.post(
            "/v1/endpoints",
            json={"name": "resized", "model": SEED_MODEL, "replicas": 2, "cpu_request": "0.5"},
        )
        assert created.status_code == 201, created.text
        server.wait_ready("resized", timeout=60)
        deployment_id = _deployment(http, "resized", "1.0")["id"]  # type: ignore[index]
        old = set(backend.live_replicas(deployment_id))
        with Load(server, "resized") as load:
            _advance(load)
            http.patch("/v1/endpoints/resized", json={"cpu_request": "0.25"}).raise_for_status()

            def rolled() -> bool:
                live = set(backend.live_replicas(deployment_id))
                return len(live) == 2 and not live & old and _ready(http, "resized", "1.0", 2)

            wait_until(rolled, timeout=60, what="both replicas replaced")
            _advance(load)
        assert load.failures() == []
    new = backend.live_replicas(deployment_id)
    assert {backend.replicas[r].spec.resources.cpu_request for r in new} == {0.25}
    assert all(backend.busy_at_stop.get(r, 0) == 0 for r in old)  # drained before stopping
