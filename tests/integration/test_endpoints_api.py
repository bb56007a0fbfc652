"""``/v1/endpoints`` over HTTP: validation (422 with the right ``param``) and isolation (S5/S6).

Replicas are fake HTTP servers (tests/support/serving_backend.py): these tests are about
the API's rules, not about serving a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.live import LiveServer, live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model, wait_until
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("regolo-home")
    backend = ServingFakeBackend()
    try:
        with live_server(home, backend=backend) as live:
            with live.client() as http:
                register_seed_model(http)
                created = http.post(
                    "/v1/endpoints",
                    json={"name": "sentiment-api", "model": SEED_MODEL, "replicas": 1},
                )
                assert created.status_code == 201, created.text
            live.wait_ready("sentiment-api", timeout=60)
            yield live
    finally:
        backend.stop_all()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return dict(error)


# --- create: every field of the seed's advanced configuration, and its checks -------------

VALID = {"name": "valid-ep", "model": SEED_MODEL, "version": "1.0"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"replicas": 5, "min_replicas": 6, "max_replicas": 10}, "replicas"),
        ({"replicas": 25, "min_replicas": 2, "max_replicas": 20}, "replicas"),
        ({"replicas": 2, "min_replicas": 3, "max_replicas": 2}, "min_replicas"),
        ({"replicas": 101}, "replicas"),
        ({"replicas": -1}, "replicas"),
        ({"cpu_request": "two"}, "cpu_request"),
        ({"cpu_request": "-1"}, "cpu_request"),
        ({"cpu_limit": "5x"}, "cpu_limit"),
        ({"memory_request": "4GB"}, "memory_request"),
        ({"memory_limit": "lots"}, "memory_limit"),
        ({"cpu_request": "3", "cpu_limit": "2"}, "cpu_request"),
        ({"memory_request": "8Gi", "memory_limit": "4Gi"}, "memory_request"),
        ({"target_utilization": 1.5}, "target_utilization"),
        ({"target_utilization": 0}, "target_utilization"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds"),
        ({"request_timeout_seconds": 10_000}, "request_timeout_seconds"),
        ({"visibility": "public"}, "visibility"),
        ({"model": "no-such-model"}, "model"),
        ({"version": "9.9"}, "version"),
        ({"name": "Bad_Name"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"price_per_hour": 0}, "price_per_hour"),  # unknown field (mass assignment)
    ],
)
def test_create_rejects_invalid_config_with_422(
    http: httpx.Client, fields: dict[str, Any], param: str
) -> None:
    error = _error(http.post("/v1/endpoints", json={**VALID, **fields}), 422)
    assert error["param"] == param, error
    assert http.get("/v1/endpoints/valid-ep").status_code == 404  # nothing persisted


def test_create_accepts_the_seeds_advanced_configuration(http: httpx.Client) -> None:
    config = {
        "name": "sentiment-api-prod",
        "model": SEED_MODEL,
        "version": "1.0",
        "replicas": 0,  # desired state only: this test does not need replicas
        "min_replicas": 0,
        "max_replicas": 20,
        "target_utilization": 0.7,
        "cpu_request": "500m",
        "memory_request": "4Gi",
        "cpu_limit": "4",
        "memory_limit": "8Gi",
        "request_timeout_seconds": 30,
        "enable_cache": True,
        "enable_compression": True,
        "slo_p95_latency_ms": 500,
        "slo_availability": 99.9,
        "slo_error_rate": 0.01,
    }
    created = http.post("/v1/endpoints", json=config)
    assert created.status_code == 201, created.text
    body = created.json()
    for field, value in config.items():
        assert body[field] == value, field
    assert body["url"].endswith("/endpoints/sentiment-api-prod/v1")
    assert _error(http.post("/v1/endpoints", json=config), 409)["param"] == "name"
    assert http.get(f"/v1/endpoints/{body['id']}").json()["name"] == "sentiment-api-prod"
    updated = http.patch("/v1/endpoints/sentiment-api-prod", json={"max_replicas": 10})
    assert updated.status_code == 200 and updated.json()["max_replicas"] == 10
    error = _error(http.patch("/v1/endpoints/sentiment-api-prod", json={"replicas": 11}), 422)
    assert error["param"] == "replicas"
    assert http.delete("/v1/endpoints/sentiment-api-prod").status_code == 204
    assert http.get("/v1/endpoints/sentiment-api-prod").status_code == 404


# --- traffic, canary, rollback rules ------------------------------------------------------


@pytest.mark.parametrize(
    ("version_traffic", "param"),
    [
        ({"1.0": 0.5}, "version_traffic"),
        ({"1.0": 0.5, "1.1": 0.4}, "version_traffic"),
        ({"1.0": 60, "1.1": 60}, "version_traffic"),
        ({"1.0": -0.5, "1.1": 1.5}, "version_traffic"),
        ({}, "version_traffic"),
        ({"1.0": 0.5, "7.7": 0.5}, "version_traffic"),  # not deployed here
    ],
)
def test_traffic_weights_are_validated(
    http: httpx.Client, version_traffic: dict[str, float], param: str
) -> None:
    response = http.put(
        "/v1/endpoints/sentiment-api/traffic", json={"version_traffic": version_traffic}
    )
    assert _error(response, 422)["param"] == param


def test_traffic_to_a_version_that_is_not_deployed_is_refused(http: httpx.Client) -> None:
    body = {"version_traffic": {"1.0": 0, "1.1": 1}}  # 1.1 is in the library, not deployed
    error = _error(http.put("/v1/endpoints/sentiment-api/traffic", json=body), 422)
    assert "not deployed" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"new_version": "1.0", "traffic_percentage": 5}, "new_version"),  # the stable one
        ({"new_version": "9.9", "traffic_percentage": 5}, "version"),
        ({"new_version": "1.1", "traffic_percentage": 0}, "traffic_percentage"),
        ({"new_version": "1.1", "traffic_percentage": 101}, "traffic_percentage"),
    ],
)
def test_canary_is_validated(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    assert _error(http.post("/v1/endpoints/sentiment-api/canary", json=body), 422)["param"] == param


def test_canary_split_rollback_and_promote_flow(http: httpx.Client) -> None:
    assert (
        http.post(
            "/v1/endpoints", json={"name": "flow", "model": SEED_MODEL, "replicas": 1}
        ).status_code
        == 201
    )
    assert _error(http.post("/v1/endpoints/flow/rollback", json={}), 422)["param"] == "to_version"
    assert _error(http.post("/v1/endpoints/flow/promote"), 422)
    canary = http.post(
        "/v1/endpoints/flow/canary", json={"new_version": "1.1", "traffic_percentage": 5}
    )
    assert canary.status_code == 201, canary.text
    assert canary.json()["new_version"] == "1.1" and canary.json()["traffic_percentage"] == 5
    weights = {
        d["version"]: d["traffic_weight"]
        for d in http.get("/v1/endpoints/flow").json()["deployments"]
    }
    assert weights == pytest.approx({"1.0": 0.95, "1.1": 0.05})
    split = http.put("/v1/endpoints/flow/traffic", json={"version_traffic": {"1.0": 50, "1.1": 50}})
    assert split.status_code == 200, split.text
    green = http.put("/v1/endpoints/flow/traffic", json={"version_traffic": {"1.0": 0, "1.1": 1.0}})
    assert green.json()["stable_version"] == "1.1"
    back = http.post("/v1/endpoints/flow/rollback", json={})
    assert back.status_code == 200, back.text
    assert back.json()["stable_version"] == "1.0"
    assert [d["version"] for d in back.json()["deployments"]] == ["1.0"]
    http.post("/v1/endpoints/flow/canary", json={"new_version": "1.1", "traffic_percentage": 10})
    promoted = http.post("/v1/endpoints/flow/promote").json()
    assert promoted["stable_version"] == "1.1"
    assert [(d["version"], d["traffic_weight"]) for d in promoted["deployments"]] == [("1.1", 1.0)]
    to_old = http.post("/v1/endpoints/flow/rollback", json={"to_version": "1.0"}).json()
    assert to_old["stable_version"] == "1.0"
    assert http.delete("/v1/endpoints/flow").status_code == 204


# --- S5 / S6: another account's endpoint does not exist for you ---------------------------

ROUTES = [
    ("GET", "/v1/endpoints/{id}", None),
    ("PATCH", "/v1/endpoints/{id}", {"replicas": 1}),
    ("DELETE", "/v1/endpoints/{id}", None),
    ("POST", "/v1/endpoints/{id}/canary", {"new_version": "1.1", "traffic_percentage": 5}),
    ("PUT", "/v1/endpoints/{id}/traffic", {"version_traffic": {"1.0": 1}}),
    ("POST", "/v1/endpoints/{id}/rollback", {}),
    ("POST", "/v1/endpoints/{id}/promote", None),
]


@pytest.fixture(scope="module")
def other_account(server: LiveServer, http: httpx.Client) -> Iterator[httpx.Client]:
    created = http.post("/v1/accounts", json={"name": "tenant-b"})
    assert created.status_code == 201, created.text
    with server.client(created.json()["admin_key"]) as client:
        yield client


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
@pytest.mark.parametrize("by", ["name", "id"])
def test_s6_another_accounts_endpoint_is_404_on_every_route(
    http: httpx.Client,
    other_account: httpx.Client,
    method: str,
    route: str,
    body: dict[str, Any] | None,
    by: str,
) -> None:
    mine = http.get("/v1/endpoints/sentiment-api").json()
    url = route.format(id=mine[by])
    response = other_account.request(method, url, json=body)
    error = _error(response, 404)
    assert "sentiment-api" not in response.text or by == "name"  # nothing of A's beyond the id
    assert mine["id"] not in error["message"] or by == "id"
    after = http.get("/v1/endpoints/sentiment-api").json()
    assert after["status"] != "deleting" and after["deployments"] == mine["deployments"]


def test_s6_lists_and_models_of_another_account_are_invisible(
    http: httpx.Client, other_account: httpx.Client
) -> None:
    assert other_account.get("/v1/endpoints").json()["data"] == []
    # B cannot deploy A's library model, nor take A's endpoint name out of A's namespace
    error = _error(
        other_account.post("/v1/endpoints", json={"name": "sentiment-api", "model": SEED_MODEL}),
        422,
    )
    assert error["param"] == "model"
    assert http.get("/v1/endpoints/sentiment-api").status_code == 200


def test_s5_inference_keys_cannot_manage_or_reach_other_endpoints(
    server: LiveServer, http: httpx.Client
) -> None:
    assert (
        http.post(
            "/v1/endpoints", json={"name": "other-api", "model": SEED_MODEL, "replicas": 1}
        ).status_code
        == 201
    )
    server.wait_ready("other-api", timeout=60)
    minted = http.post("/v1/keys", json={"name": "only-a", "scopes": ["inference:sentiment-api"]})
    assert minted.status_code == 201, minted.text
    with server.client(minted.json()["key"]) as scoped:
        for method, route, body in ROUTES:
            response = scoped.request(method, route.format(id="sentiment-api"), json=body)
            assert response.status_code in (403, 404), (method, route, response.text)
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        ok = scoped.post("/endpoints/sentiment-api/v1/chat/completions", json=chat)
        assert ok.status_code == 200, ok.text
        other = scoped.post("/endpoints/other-api/v1/chat/completions", json=chat)
        _error(other, 404)
        by_model = scoped.post("/v1/chat/completions", json={**chat, "model": "other-api"})
        _error(by_model, 404)
        listed = {m["id"] for m in scoped.get("/v1/models").json()["data"]}
        assert "other-api" not in listed and "sentiment-api" in listed
    http.delete("/v1/endpoints/other-api")


def test_traffic_change_reaches_the_gateway_at_once(server: LiveServer, http: httpx.Client) -> None:
    """The handler republishes the routing table before answering (no wait for a tick)."""
    assert (
        http.post(
            "/v1/endpoints", json={"name": "fast", "model": SEED_MODEL, "replicas": 1}
        ).status_code
        == 201
    )
    server.wait_ready("fast", timeout=60)
    http.post("/v1/endpoints/fast/canary", json={"new_version": "1.1", "traffic_percentage": 50})
    wait_until(
        lambda: any(
            d["version"] == "1.1" and d["ready_replicas"] == 1
            for d in http.get("/v1/endpoints/fast").json()["deployments"]
        ),
        what="canary ready",
    )
    http.put("/v1/endpoints/fast/traffic", json={"version_traffic": {"1.0": 0, "1.1": 1}})
    gateway = server.platform.gateway
    assert gateway is not None
    route = next(e for e in gateway.table.endpoints if e.name == "fast")
    weights = {d.version: d.traffic_weight for d in route.deployments}
    assert weights.get("1.0", 0) == 0 and weights["1.1"] == 1
    http.delete("/v1/endpoints/fast")


def test_an_endpoint_that_fits_nowhere_stays_pending_with_the_reason(
    server: LiveServer, http: httpx.Client
) -> None:
    """Like an unschedulable Kubernetes pod: accepted, pending, and no failed replica rows."""
    from sqlalchemy import func, select

    from regolo.server.store.tables import Deployment, Endpoint, Replica

    cores = server.platform.backend.capacity().cpu_cores
    body = {"name": "too-big", "model": SEED_MODEL, "cpu_limit": str(int(cores * 2))}
    assert http.post("/v1/endpoints", json=body).status_code == 201
    pending = wait_until(
        lambda: (e := http.get("/v1/endpoints/too-big").json())["status_reason"] and e,
        what="a capacity reason",
    )
    assert pending["status"] == "pending" and "cpu_limit" in pending["status_reason"]
    with server.platform.db.read() as session:
        replicas = session.scalar(
            select(func.count(Replica.id))
            .join(Deployment, Replica.deployment_id == Deployment.id)
            .join(Endpoint, Deployment.endpoint_id == Endpoint.id)
            .where(Endpoint.name == "too-big")
        )
    assert replicas == 0
    # once it fits, it starts
    http.patch("/v1/endpoints/too-big", json={"cpu_limit": "1"}).raise_for_status()
    server.wait_ready("too-big", timeout=60)
    http.delete("/v1/endpoints/too-big")


def test_visibility_keys_limits_the_endpoint_to_the_listed_keys(
    server: LiveServer, http: httpx.Client
) -> None:
    listed = http.post("/v1/keys", json={"name": "listed", "scopes": ["inference:*"]}).json()
    other = http.post("/v1/keys", json={"name": "other", "scopes": ["inference:*"]}).json()
    body = {
        "name": "private-api",
        "model": SEED_MODEL,
        "visibility": "keys",
        "allowed_key_ids": [listed["id"]],
    }
    created = http.post("/v1/endpoints", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["allowed_key_ids"] == [listed["id"]]
    server.wait_ready("private-api", timeout=60)
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with server.client(listed["key"]) as allowed:
        assert (
            allowed.post("/endpoints/private-api/v1/chat/completions", json=chat).status_code == 200
        )
    with server.client(other["key"]) as refused:
        _error(refused.post("/endpoints/private-api/v1/chat/completions", json=chat), 404)
    http.delete("/v1/endpoints/private-api")


def test_unknown_instance_type_is_refused(http: httpx.Client) -> None:
    response = http.post("/v1/endpoints", json={**VALID, "instance_type": "no-such-gpu"})
    assert response.status_code in (404, 422), response.text
    assert _error(response, response.status_code)["param"] == "instance_type"
