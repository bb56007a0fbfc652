"""Who sees which batch and file (S5, S6), API validation, cancel, and the runner's
limit of running batches per account, against a live platform with fake replicas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.batch_support import add_external_endpoint, chat_line, jsonl, wait_for
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live import LiveServer, live_server

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def replica() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer("fake-a").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, replica: FakeOpenAIServer
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("batch-home")
    with live_server(home, demo=False) as server:
        with server.client() as http:
            add_external_endpoint(http, "alpha", replica.address)
            add_external_endpoint(http, "beta", replica.address)
        server.wait_ready("alpha")
        server.wait_ready("beta")
        yield server


def mint(live: LiveServer, scopes: list[str]) -> str:
    with live.client() as http:
        response = http.post("/v1/keys", json={"name": "k", "scopes": scopes})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


def upload(http: httpx.Client, data: bytes) -> str:
    response = http.post("/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def submit(http: httpx.Client, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    file_id = upload(http, jsonl(lines))
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", **extra}
    response = http.post("/v1/batches", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def finished(http: httpx.Client, batch_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(http.get(f"/v1/batches/{batch_id}").json())
        return found["status"] in ("completed", "failed", "expired", "cancelled")

    wait_for(done, timeout=60)
    return found


def test_a_key_for_one_endpoint_cannot_see_another_endpoints_batch(live: LiveServer) -> None:
    key_a = mint(live, ["inference:alpha"])
    with live.client() as admin, live.client(key_a) as only_a:
        beta = finished(admin, submit(admin, [chat_line("b1", "beta")], endpoint_id="beta")["id"])
        assert beta["status"] == "completed"
        for path in (
            f"/v1/batches/{beta['id']}",
            f"/v1/files/{beta['output_file_id']}",
            f"/v1/files/{beta['output_file_id']}/content",
            f"/v1/files/{beta['input_file_id']}",
        ):
            assert only_a.get(path).status_code == 404, path
        assert only_a.post(f"/v1/batches/{beta['id']}/cancel").status_code == 404
        assert beta["id"] not in [b["id"] for b in only_a.get("/v1/batches").json()["data"]]
        # it may not start a batch on beta either, even with its own file
        file_id = upload(only_a, jsonl([chat_line("x", "beta")]))
        response = only_a.post(
            "/v1/batches", json={"input_file_id": file_id, "endpoint_id": "beta"}
        )
        assert response.status_code == 404
        # but its own batch on alpha works, and the admin sees it too
        alpha = submit(only_a, [chat_line("a1", "alpha")], endpoint_id="alpha")
        assert finished(only_a, alpha["id"])["status"] == "completed"
        assert admin.get(f"/v1/batches/{alpha['id']}").status_code == 200


def test_lines_without_endpoint_resolve_by_model_within_the_keys_scope(live: LiveServer) -> None:
    key_a = mint(live, ["inference:alpha"])
    with live.client(key_a) as only_a:
        batch = submit(only_a, [chat_line("a", "alpha"), chat_line("b", "beta")])
        failed = finished(only_a, batch["id"])
    assert failed["status"] == "failed"
    assert [(e["line"], e["code"]) for e in failed["errors"]["data"]] == [(2, "model_not_found")]


def test_bad_requests_are_rejected_with_the_parameter(live: LiveServer) -> None:
    with live.client() as http:
        file_id = upload(http, jsonl([chat_line("a", "alpha")]))
        cases = [
            ({"input_file_id": file_id, "endpoint": "/v1/images"}, "endpoint"),
            ({"input_file_id": file_id, "completion_window": "forever"}, "completion_window"),
            ({"input_file_id": "file-doesnotexist"}, "file_id"),
            ({"input_file_id": "../../etc/passwd"}, "file_id"),
        ]
        for body, param in cases:
            response = http.post("/v1/batches", json=body)
            assert response.status_code in (400, 404), (body, response.text)
            assert response.json()["error"]["param"] == param
        assert http.post("/v1/batches", json={"input_file_id": file_id, "x": 1}).status_code == 422
        wrong = http.post("/v1/files", files={"file": ("a", b"{}")}, data={"purpose": "fine-tune"})
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "purpose"
        for bad_id in ("..%2f..%2fadmin-key", "file-..", "file-ABC", "%2e%2e"):
            assert http.get(f"/v1/files/{bad_id}/content").status_code == 404


def test_files_list_get_delete(live: LiveServer) -> None:
    with live.client() as http:
        file_id = upload(http, b'{"model": "alpha", "messages": []}\n')
        assert file_id in [f["id"] for f in http.get("/v1/files").json()["data"]]
        assert http.get(f"/v1/files/{file_id}").json()["bytes"] == 35
        assert http.get(f"/v1/files/{file_id}/content").content.startswith(b'{"model"')
        assert http.delete(f"/v1/files/{file_id}").json()["deleted"] is True
        assert http.get(f"/v1/files/{file_id}").status_code == 404
        assert not (live.settings.files_dir / file_id).exists()


def test_cancel_a_running_batch_keeps_finished_lines(
    live: LiveServer, replica: FakeOpenAIServer
) -> None:
    replica.behaviour.mode, replica.behaviour.delay_seconds = "slow", 0.3
    try:
        with live.client() as http:
            batch = submit(http, [chat_line(f"r{i}", "alpha") for i in range(40)])
            wait_for(
                lambda: (
                    http.get(f"/v1/batches/{batch['id']}").json()["request_counts"]["completed"]
                    >= 2
                )
            )
            cancelling = http.post(f"/v1/batches/{batch['id']}/cancel").json()
            assert cancelling["status"] in ("cancelling", "cancelled")
            done = finished(http, batch["id"])
            assert done["status"] == "cancelled"
            output = http.get(f"/v1/files/{done['output_file_id']}/content").text.splitlines()
            errors = http.get(f"/v1/files/{done['error_file_id']}/content").text.splitlines()
            assert len(output) == done["request_counts"]["completed"] >= 2
            assert len(output) + len(errors) == 40
    finally:
        replica.behaviour.mode = "ok"
