"""The seed's samples, run verbatim against the scripted API."""

from decimal import Decimal
from typing import Any

import httpx
import pytest

import regolo

FakeAPI = Any  # the ``api`` fixture of conftest.py

pytestmark = pytest.mark.usefixtures("default_client")

VERSION = {
    "id": "mv_1",
    "model": "qwen",
    "version": "1.0",
    "source": "hf://Qwen/Qwen2.5-0.5B",
    "status": "downloading",
    "progress": {"bytes_done": 5, "bytes_total": 10},
    "facts": {"format": "safetensors", "parameter_count": 494000000},
}


def test_basic_endpoint(
    api: FakeAPI, endpoint_json: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api.json("POST", "/v1/endpoints", endpoint_json(), status=201)

    endpoint = regolo.create_endpoint(
        name="sentiment-api",
        model="sentiment-classifier",
        version="1.0",
        replicas=2,  # Number of instances
    )

    print(f"Endpoint ID: {endpoint.id}")
    print(f"URL: {endpoint.url}")
    print(f"Endpoint created: {endpoint.status}")
    assert capsys.readouterr().out.splitlines() == [
        "Endpoint ID: ep_1",
        f"URL: {api.base_url}/endpoints/sentiment-api",
        "Endpoint created: pending",
    ]
    assert api.last.headers["authorization"] == "Bearer rk_admin"
    assert api.last_json() == {
        "name": "sentiment-api",
        "model": "sentiment-classifier",
        "version": "1.0",
        "replicas": 2,
    }
    assert endpoint.deployments[0].traffic_weight == 1.0


def test_advanced_configuration(api: FakeAPI, endpoint_json: Any) -> None:
    api.json("POST", "/v1/endpoints", endpoint_json(replicas=5, cpu_request="2"), status=201)
    endpoint = regolo.create_endpoint(
        name="sentiment-api-prod",
        model="sentiment-classifier",
        version="1.0",
        replicas=5,
        min_replicas=2,
        max_replicas=20,
        target_utilization=0.7,
        cpu_request="2",
        memory_request="4Gi",
        cpu_limit="4",
        memory_limit="8Gi",
        request_timeout_seconds=30,
        enable_cache=True,
        enable_compression=True,
    )
    sent = api.last_json()
    assert sent["max_replicas"] == 20 and sent["memory_limit"] == "8Gi"
    assert sent["enable_compression"] is True and sent["request_timeout_seconds"] == 30
    assert endpoint.cpu_request == "2"


def test_canary(api: FakeAPI) -> None:
    api.json(
        "POST",
        "/v1/endpoints/sentiment-api/canary",
        {
            "endpoint_id": "ep_1",
            "new_version": "1.1",
            "stable_version": "1.0",
            "traffic_percentage": 5,
            "deployment_id": "dep_2",
        },
    )
    canary = regolo.create_canary(
        endpoint_id="sentiment-api", new_version="1.1", traffic_percentage=5
    )
    assert (canary.new_version, canary.traffic_percentage, canary.stable_version) == (
        "1.1",
        5,
        "1.0",
    )
    assert api.last_json() == {"new_version": "1.1", "traffic_percentage": 5}


def test_list_update_delete(api: FakeAPI, endpoint_json: Any) -> None:
    api.json("GET", "/v1/endpoints", {"object": "list", "data": [endpoint_json()]})
    api.json("PATCH", "/v1/endpoints/sentiment-api", endpoint_json(replicas=10))
    api.on("DELETE", "/v1/endpoints/sentiment-api", httpx.Response(204))

    endpoints = regolo.list_endpoints()
    assert [f"{e.model}:{e.version}" for e in endpoints] == ["sentiment-classifier:1.0"]
    updated = regolo.update_endpoint(
        endpoint_id="sentiment-api", replicas=10, request_timeout_seconds=60
    )
    assert updated.replicas == 10
    assert api.last_json() == {"replicas": 10, "request_timeout_seconds": 60}
    regolo.delete_endpoint(endpoint_id="sentiment-api")
    assert api.last.method == "DELETE"


def test_traffic_rollback_promote(api: FakeAPI, endpoint_json: Any) -> None:
    for method, path in [("PUT", "traffic"), ("POST", "rollback"), ("POST", "promote")]:
        api.json(method, f"/v1/endpoints/sentiment-api/{path}", endpoint_json())
    regolo.update_endpoint_traffic(
        endpoint_id="sentiment-api", version_traffic={"1.0": 0, "1.1": 1.0}
    )
    assert api.last_json() == {"version_traffic": {"1.0": 0, "1.1": 1.0}}
    regolo.rollback_endpoint("sentiment-api", to_version="1.0")
    assert api.last_json() == {"to_version": "1.0"}
    regolo.promote_canary("sentiment-api")
    assert api.last.url.path == "/v1/endpoints/sentiment-api/promote"


def test_ids_are_escaped(api: FakeAPI) -> None:
    with pytest.raises(regolo.NotFoundError):
        regolo.get_endpoint("../keys")
    assert api.last.url.raw_path == b"/v1/endpoints/..%2Fkeys"


def test_wait_for_endpoint(api: FakeAPI, endpoint_json: Any) -> None:
    api.on(
        "GET",
        "/v1/endpoints/sentiment-api",
        httpx.Response(200, json=endpoint_json(status="deploying")),
        httpx.Response(200, json=endpoint_json(status="ready")),
    )
    endpoint = regolo.wait_for_endpoint("sentiment-api", poll_interval_seconds=0)
    assert endpoint.status == "ready" and len(api.requests) == 2


def test_wait_for_endpoint_raises_on_failure_and_timeout(api: FakeAPI, endpoint_json: Any) -> None:
    api.json("GET", "/v1/endpoints/a", endpoint_json(status="failed", status_reason="OOM"))
    with pytest.raises(regolo.RegoloError, match="OOM"):
        regolo.wait_for_endpoint("a", poll_interval_seconds=0)
    api.json("GET", "/v1/endpoints/b", endpoint_json(status="deploying"))
    with pytest.raises(TimeoutError):
        regolo.wait_for_endpoint("b", timeout=0, poll_interval_seconds=0)


def test_keys(api: FakeAPI) -> None:
    key = {
        "id": "key_1",
        "name": "ci",
        "prefix": "rk_ab12",
        "scopes": ["inference:*"],
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    api.json("POST", "/v1/keys", {**key, "key": "rk_ab12_secret"}, status=201)
    api.json("GET", "/v1/keys", {"object": "list", "data": [key]})
    api.json("DELETE", "/v1/keys/key_1", {**key, "revoked_at": "2025-01-02T00:00:00Z"})

    created = regolo.create_key("ci", rate_limit_rpm=60)
    assert created.key == "rk_ab12_secret"
    assert api.last_json() == {"name": "ci", "scopes": ["inference:*"], "rate_limit_rpm": 60}
    assert [k.prefix for k in regolo.list_keys()] == ["rk_ab12"]
    assert regolo.revoke_key("key_1").revoked_at is not None


def test_model_library(api: FakeAPI) -> None:
    model = {"id": "m_1", "name": "qwen", "versions": [VERSION, {**VERSION, "version": "1.1"}]}
    api.json("POST", "/v1/library/models", VERSION, status=202)
    api.json("GET", "/v1/library/models", {"object": "list", "data": [model]})
    api.json("GET", "/v1/library/models/qwen", model)
    api.json(
        "GET",
        "/v1/library/models/qwen/versions/1.1/instances",
        {
            "object": "list",
            "data": [
                {
                    "instance_type": "cpu-small",
                    "fits": True,
                    "price_per_hour": "0.10",
                    "price_per_month": "73.00",
                }
            ],
        },
    )
    api.on("DELETE", "/v1/library/models/qwen", httpx.Response(204))

    added = regolo.add_model("https://huggingface.co/Qwen/Qwen2.5-0.5B", name="qwen")
    assert added.progress.bytes_total == 10 and added.facts.format == "safetensors"
    assert api.last_json() == {"url": "https://huggingface.co/Qwen/Qwen2.5-0.5B", "name": "qwen"}
    assert [m.name for m in regolo.list_models()] == ["qwen"]
    fits = regolo.list_model_instances("qwen")  # the newest version, 1.1
    assert fits[0].price_per_month == Decimal("73.00")
    regolo.delete_model("qwen", version="1.0")
    assert api.last.url.params["version"] == "1.0"
    assert regolo.default_client().get_model_version("qwen", "1.0").id == "mv_1"
    with pytest.raises(regolo.NotFoundError):
        regolo.default_client().get_model_version("qwen", "9.9")


def test_instances_have_decimal_prices(api: FakeAPI) -> None:
    api.json(
        "GET",
        "/v1/instances",
        {
            "object": "list",
            "data": [
                {
                    "id": "a100-80",
                    "accelerator": "A100-80GB",
                    "gpu_count": 1,
                    "gpu_memory_gb": 80,
                    "vcpu": 12,
                    "ram_gb": 85,
                    "price_per_hour": "1.10",
                    "currency": "EUR",
                }
            ],
        },
    )
    (instance,) = regolo.list_instances()
    assert instance.price_per_hour == Decimal("1.10") and instance.currency == "EUR"


def test_errors_come_back_typed(api: FakeAPI) -> None:
    api.on(
        "POST",
        "/v1/endpoints",
        httpx.Response(
            409,
            headers={"x-request-id": "req_9"},
            json={
                "error": {
                    "message": "endpoint exists",
                    "type": "conflict_error",
                    "param": "name",
                    "code": "already_exists",
                }
            },
        ),
    )
    with pytest.raises(regolo.ConflictError) as caught:
        regolo.create_endpoint("sentiment-api", "sentiment-classifier")
    assert (caught.value.param, caught.value.request_id) == ("name", "req_9")


def test_default_client_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    regolo._default_client._client = None
    monkeypatch.setenv("REGOLO_API_KEY", "rk_env")
    monkeypatch.setenv("REGOLO_BASE_URL", "http://env.test")
    assert regolo.default_client().api_key == "rk_env"
