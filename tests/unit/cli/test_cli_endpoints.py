import json
from typing import Any

Api = Any  # the ``api`` fixture of conftest.py
Run = Any  # the ``run`` fixture


def test_create_sends_only_given_options(api: Api, run: Run, endpoint: dict) -> None:
    api.json("POST", "/v1/endpoints", endpoint, status=201)
    result = run(
        "endpoints",
        "create",
        "sentiment-api",
        "--model",
        "sentiment-classifier",
        "--version",
        "1.0",
        "--replicas",
        "2",
        "--instance-type",
        "cpu-small",
        "--memory-limit",
        "8Gi",
        "--cache",
    )
    assert result.exit_code == 0, result.output
    assert api.last_json() == {
        "name": "sentiment-api",
        "model": "sentiment-classifier",
        "version": "1.0",
        "replicas": 2,
        "instance_type": "cpu-small",
        "memory_limit": "8Gi",
        "enable_cache": True,
    }
    assert "sentiment-api" in result.output and "90%" in result.output


def test_create_and_wait(api: Api, run: Run, endpoint: dict) -> None:
    api.json("POST", "/v1/endpoints", {**endpoint, "status": "pending"}, status=201)
    api.json("GET", "/v1/endpoints/ep_1", endpoint)
    result = run("endpoints", "create", "sentiment-api", "--model", "m", "--wait")
    assert result.exit_code == 0, result.output
    assert "status: ready" in result.output


def test_list_table_and_json(api: Api, run: Run, endpoint: dict) -> None:
    api.json("GET", "/v1/endpoints", {"object": "list", "data": [endpoint]})
    table = run("endpoints", "list")
    assert table.exit_code == 0, table.output
    assert "sentiment-classifier:1.0" in table.output and "ready" in table.output
    as_json = run("endpoints", "list", "--json")
    assert json.loads(as_json.output)[0]["name"] == "sentiment-api"


def test_get_json(api: Api, run: Run, endpoint: dict) -> None:
    api.json("GET", "/v1/endpoints/sentiment-api", endpoint)
    result = run("endpoints", "get", "sentiment-api", "--json")
    assert json.loads(result.output)["deployments"][1]["version"] == "1.1"


def test_update(api: Api, run: Run, endpoint: dict) -> None:
    api.json("PATCH", "/v1/endpoints/sentiment-api", endpoint)
    result = run(
        "endpoints",
        "update",
        "sentiment-api",
        "--replicas",
        "10",
        "--request-timeout-seconds",
        "60",
        "--no-compression",
    )
    assert result.exit_code == 0, result.output
    assert api.last_json() == {
        "replicas": 10,
        "request_timeout_seconds": 60.0,
        "enable_compression": False,
    }


def test_update_without_changes_is_refused(run: Run) -> None:
    result = run("endpoints", "update", "sentiment-api")
    assert result.exit_code == 2


def test_delete_asks_first(api: Api, run: Run) -> None:
    api.raw("DELETE", "/v1/endpoints/sentiment-api", __import__("httpx").Response(204))
    refused = run("endpoints", "delete", "sentiment-api", input="n\n")
    assert refused.exit_code == 1 and not api.requests
    confirmed = run("endpoints", "delete", "sentiment-api", "--yes")
    assert confirmed.exit_code == 0 and "Deleted" in confirmed.output


def test_canary(api: Api, run: Run) -> None:
    api.json(
        "POST",
        "/v1/endpoints/sentiment-api/canary",
        {
            "endpoint_id": "ep_1",
            "new_version": "1.1",
            "stable_version": "1.0",
            "traffic_percentage": 5,
        },
    )
    result = run("endpoints", "canary", "sentiment-api", "--version", "1.1", "--percent", "5")
    assert result.exit_code == 0, result.output
    assert api.last_json() == {"new_version": "1.1", "traffic_percentage": 5.0}
    assert "1.1 gets 5%" in result.output


def test_traffic_pairs(api: Api, run: Run, endpoint: dict) -> None:
    api.json("PUT", "/v1/endpoints/sentiment-api/traffic", endpoint)
    result = run("endpoints", "traffic", "sentiment-api", "1.0=0.5", "1.1=0.5")
    assert result.exit_code == 0, result.output
    assert api.last_json() == {"version_traffic": {"1.0": 0.5, "1.1": 0.5}}
    bad = run("endpoints", "traffic", "sentiment-api", "1.0:0.5")
    assert bad.exit_code == 2 and "VERSION=WEIGHT" in bad.output


def test_rollback_and_promote(api: Api, run: Run, endpoint: dict) -> None:
    api.json("POST", "/v1/endpoints/sentiment-api/rollback", endpoint)
    api.json("POST", "/v1/endpoints/sentiment-api/promote", endpoint)
    assert run("endpoints", "rollback", "sentiment-api", "--to", "1.0").exit_code == 0
    assert api.last_json() == {"to_version": "1.0"}
    assert run("endpoints", "promote", "sentiment-api").exit_code == 0


def test_api_error_is_one_line_not_a_traceback(run: Run) -> None:
    result = run("endpoints", "get", "missing")
    assert result.exit_code == 1
    assert "error:" in result.output and "not found" in result.output
    assert "req_404" in result.output and "Traceback" not in result.output
