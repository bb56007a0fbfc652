import json
import sys
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from regolo.cli._parse import parse_duration

Api = Any  # the ``api`` fixture of conftest.py
Run = Any  # the ``run`` fixture

KEY = {
    "id": "key_1",
    "name": "ci",
    "prefix": "rk_ab12",
    "scopes": ["inference:*"],
    "created_at": "2025-01-01T00:00:00Z",
}
VERSION = {
    "id": "mv_1",
    "model": "qwen",
    "version": "1.0",
    "status": "downloading",
    "progress": {"bytes_done": 0, "bytes_total": 100},
    "facts": {"format": "gguf", "parameter_count": 494000000},
}


def test_keys_create_shows_secret_once(api: Api, run: Run) -> None:
    api.json("POST", "/v1/keys", {**KEY, "key": "rk_ab12_SECRET"}, status=201)
    result = run(
        "keys",
        "create",
        "ci",
        "--scope",
        "inference:a",
        "--scope",
        "inference:b",
        "--expires-in",
        "30d",
        "--rpm",
        "60",
    )
    assert result.exit_code == 0, result.output
    assert "rk_ab12_SECRET" in result.output and "not be shown again" in result.output
    sent = api.last_json()
    assert sent["scopes"] == ["inference:a", "inference:b"] and sent["rate_limit_rpm"] == 60
    expires = datetime.fromisoformat(sent["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)


def test_keys_list_and_revoke(api: Api, run: Run) -> None:
    api.json("GET", "/v1/keys", {"object": "list", "data": [KEY]})
    api.json("DELETE", "/v1/keys/key_1", {**KEY, "revoked_at": "2025-01-02T00:00:00Z"})
    listed = run("keys", "list")
    assert listed.exit_code == 0 and "rk_ab12" in listed.output
    assert json.loads(run("keys", "list", "--json").output)[0]["id"] == "key_1"
    assert "Revoked key ci" in run("keys", "revoke", "key_1").output


def test_keys_bad_duration(run: Run) -> None:
    result = run("keys", "create", "ci", "--expires-in", "soon")
    assert result.exit_code == 2 and "not a duration" in result.output


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("12h", 43200), ("4w", 2419200)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_models_add_follows_the_download(api: Api, run: Run) -> None:
    api.json("POST", "/v1/library/models", VERSION, status=202)
    halfway = {**VERSION, "progress": {"bytes_done": 50, "bytes_total": 100}}
    ready = {**VERSION, "status": "ready", "progress": {"bytes_done": 100, "bytes_total": 100}}
    api.json(
        "GET",
        "/v1/library/models/qwen",
        {"id": "m_1", "name": "qwen", "versions": [halfway]},
        {"id": "m_1", "name": "qwen", "versions": [ready]},
    )
    result = run(
        "models",
        "add",
        "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "--name",
        "qwen",
        "--poll-interval",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "qwen:1.0 is ready" in result.output and "gguf" in result.output
    assert sum(r.url.path == "/v1/library/models/qwen" for r in api.requests) == 2


def test_models_add_reports_failure(api: Api, run: Run) -> None:
    failed = {**VERSION, "status": "failed", "status_reason": "repository not found"}
    api.json("POST", "/v1/library/models", failed, status=202)
    result = run("models", "add", "https://huggingface.co/nobody/nothing")
    assert result.exit_code == 1 and "repository not found" in result.output


def test_models_list_and_instances(api: Api, run: Run) -> None:
    model = {"id": "m_1", "name": "qwen", "versions": [{**VERSION, "status": "ready"}]}
    api.json("GET", "/v1/library/models", {"object": "list", "data": [model]})
    api.json("GET", "/v1/library/models/qwen", model)
    api.json(
        "GET",
        "/v1/library/models/qwen/versions/1.0/instances",
        {
            "object": "list",
            "data": [
                {
                    "instance_type": "cpu-small",
                    "fits": True,
                    "gpus": 0,
                    "price_per_hour": "0.05",
                    "price_per_month": "36.50",
                    "estimated_tokens_per_second": 20.0,
                },
                {"instance_type": "l4", "fits": False, "reason": "no GPU available"},
            ],
        },
    )
    listed = run("models", "list")
    assert listed.exit_code == 0 and "494000000" in listed.output
    fits = run("models", "instances", "qwen")
    assert fits.exit_code == 0, fits.output
    assert "36.50" in fits.output and "no GPU available" in fits.output


def test_instances(api: Api, run: Run) -> None:
    api.json(
        "GET",
        "/v1/instances",
        {
            "object": "list",
            "data": [
                {
                    "id": "h100-80",
                    "accelerator": "H100-80GB",
                    "gpu_count": 1,
                    "gpu_memory_gb": 80,
                    "vcpu": 26,
                    "ram_gb": 200,
                    "price_per_hour": "2.4900",
                    "currency": "USD",
                    "available": False,
                }
            ],
        },
    )
    result = run("instances")
    assert result.exit_code == 0, result.output
    assert "2.4900 USD" in result.output and "H100-80GB" in result.output
    assert json.loads(run("instances", "--json").output)[0]["price_per_hour"] == "2.4900"


def _stream(*parts: str) -> httpx.Response:
    events = [json.dumps({"choices": [{"delta": {"content": p}}]}) for p in parts]
    body = "".join(f"data: {e}\n\n" for e in [*events, "[DONE]"])
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_chat_one_shot_streams_through_the_endpoint(api: Api, run: Run) -> None:
    api.raw("POST", "/endpoints/sentiment-api/v1/chat/completions", _stream("posi", "tive"))
    result = run("chat", "sentiment-api", "-m", "This is great!", "--max-tokens", "5")
    assert result.exit_code == 0, result.output
    assert result.output == "positive\n"
    assert api.last_json() == {
        "messages": [{"role": "user", "content": "This is great!"}],
        "stream": True,
        "max_tokens": 5,
    }


def test_chat_interactive_keeps_history(api: Api, run: Run) -> None:
    api.raw("POST", "/endpoints/bot/v1/chat/completions", _stream("hi"))
    result = run("chat", "bot", "--system", "be brief", input="hello\n\nagain\n/exit\n")
    assert result.exit_code == 0, result.output
    assert len(api.requests) == 2
    assert [m["role"] for m in api.last_json()["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_serve_imports_the_server_lazily(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("regolo.server.main")
    fake.serve = lambda **kwargs: calls.append(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "regolo.server.main", fake)
    result = run(
        "serve", "--port", "9000", "--role", "gateway", "--no-demo", "--home", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        # host not given: None, so REGOLO_HOST (or the settings' default) decides
        {"host": None, "port": 9000, "role": "gateway", "demo": False, "home": tmp_path}
    ]


def test_sdk_and_cli_do_not_import_the_server() -> None:
    import subprocess

    code = (
        "import sys, regolo, regolo.cli.main; "
        "print(any(m.startswith('regolo.server') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False"


def test_sdk_does_not_need_typer() -> None:
    # httpx itself imports rich and click when they are installed, so only typer is checked.
    import subprocess

    code = "import sys, regolo; print(sorted({'typer', 'regolo.cli'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
