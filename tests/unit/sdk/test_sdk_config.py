from pathlib import Path

import pytest

from regolo._config import DEFAULT_BASE_URL, resolve_config
from regolo._sse import iter_sse_data
from regolo._urls import endpoint_base, inference_base, segment


@pytest.mark.parametrize(
    "url",
    [
        "https://sentiment-api.regolo.ai",
        "https://sentiment-api.regolo.ai/",
        "https://sentiment-api.regolo.ai/v1",
        "https://sentiment-api.regolo.ai/v1/chat/completions",
        "https://sentiment-api.regolo.ai/v1/chat/completions/",
    ],
)
def test_inference_base_accepts_every_form(url: str) -> None:
    assert inference_base(url) == "https://sentiment-api.regolo.ai/v1"


def test_inference_base_of_path_endpoints() -> None:
    assert inference_base("http://h:8000/endpoints/a") == "http://h:8000/endpoints/a/v1"
    assert inference_base("https://api.regolo.ai/custom-model/v1/chat/completions/") == (
        "https://api.regolo.ai/custom-model/v1"
    )


def test_segments_cannot_change_the_route() -> None:
    assert segment("../etc") == "..%2Fetc"
    assert segment("..") == "%2E%2E"
    assert endpoint_base("http://h/", "a b") == "http://h/endpoints/a%20b"


def test_arguments_win_over_environment() -> None:
    env = {"REGOLO_API_KEY": "env-key", "REGOLO_BASE_URL": "http://env:1/"}
    assert resolve_config(None, None, env).api_key == "env-key"
    assert resolve_config(None, None, env).base_url == "http://env:1"
    config = resolve_config("arg-key", "http://arg:2", env)
    assert (config.api_key, config.base_url) == ("arg-key", "http://arg:2")


def test_alternative_variable_names() -> None:
    config = resolve_config(env={"API_KEY": "k", "REGOLO_URL": "http://u:3"})
    assert (config.api_key, config.base_url) == ("k", "http://u:3")


def test_local_server_falls_back_to_admin_key(tmp_path: Path) -> None:
    (tmp_path / "admin-key").write_text("rk_admin_secret\n")
    env = {"REGOLO_HOME": str(tmp_path)}
    assert resolve_config(env=env).api_key == "rk_admin_secret"
    assert resolve_config(env=env).base_url == DEFAULT_BASE_URL


def test_remote_server_never_gets_the_local_admin_key(tmp_path: Path) -> None:
    (tmp_path / "admin-key").write_text("rk_admin_secret")
    env = {"REGOLO_HOME": str(tmp_path), "REGOLO_BASE_URL": "https://api.example.com"}
    assert resolve_config(env=env).api_key is None


def test_missing_admin_key_file_means_no_key(tmp_path: Path) -> None:
    assert resolve_config(env={"REGOLO_HOME": str(tmp_path)}).api_key is None


def test_sse_data_lines() -> None:
    lines = [
        ": keep-alive",
        "event: message",
        'data: {"a": 1}',
        "",
        "data:x",
        "data: y",
        "",
        "data: [DONE]",
        "",
    ]
    assert list(iter_sse_data(lines)) == ['{"a": 1}', "x\ny", "[DONE]"]


def test_sse_last_event_without_blank_line() -> None:
    assert list(iter_sse_data(["data: tail"])) == ["tail"]
