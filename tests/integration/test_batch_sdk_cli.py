"""The SDK (``regolo.submit_batch`` and friends) and ``regolo batches`` against a live
platform whose endpoint is a fake replica."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import regolo
from regolo.cli.main import app
from tests.integration.batch_support import add_external_endpoint, chat_line, jsonl
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live import LiveServer, live_server

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    replica = FakeOpenAIServer("sdk").start()
    home = tmp_path_factory.mktemp("batch-sdk-home")
    try:
        with live_server(home, demo=False) as server:
            with server.client() as http:
                add_external_endpoint(http, "sentiment-api", replica.address)
            server.wait_ready("sentiment-api")
            yield server
    finally:
        replica.stop()


def test_sdk_submit_a_list_wait_and_read_results(live: LiveServer) -> None:
    client = regolo.RegoloClient(live.admin_key, base_url=live.base_url)
    requests = [
        {"custom_id": "a", "params": {"messages": [{"role": "user", "content": "hi"}]}},
        {"model": "sentiment-api", "messages": [{"role": "user", "content": "yo"}]},
    ]
    batch = client.submit_batch(requests=requests, endpoint_id="sentiment-api")
    assert batch.status == "validating" and batch.endpoint_id == "sentiment-api"
    done = client.wait_for_batch(batch.id, timeout_seconds=60, poll_seconds=0.2)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed) == (2, 2)
    results = client.get_batch_results(batch.id)
    assert sorted(r.custom_id for r in results) == ["a", "request-2"]
    assert all(r.ok for r in results)
    assert batch.id in [b.id for b in client.list_batches()]
    assert client.cancel_batch(batch.id).status == "completed"  # nothing left to cancel


def test_module_level_submit_batch_from_a_path_as_in_the_seed(
    live: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(jsonl([chat_line(f"s{i}", "sentiment-api") for i in range(3)]))
    regolo.configure(api_key=live.admin_key, base_url=live.base_url)
    batch = regolo.submit_batch(requests=str(path), endpoint_id="sentiment-api")
    done = regolo.wait_for_batch(batch.id, timeout_seconds=60)
    assert done.status == "completed"
    assert regolo.get_batch(batch.id).request_counts.completed == 3
    assert len(regolo.get_batch_results(batch.id)) == 3


def test_cli_submit_follows_to_the_end_and_prints_results(live: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "cli.jsonl"
    path.write_bytes(jsonl([chat_line(f"c{i}", "sentiment-api") for i in range(4)]))
    client = regolo.RegoloClient(live.admin_key, base_url=live.base_url)
    runner = CliRunner()
    submitted = runner.invoke(
        app, ["batches", "submit", str(path), "--endpoint", "sentiment-api"], obj=client
    )
    assert submitted.exit_code == 0, submitted.output
    assert "completed" in submitted.output
    listed = runner.invoke(app, ["batches", "list", "--json"], obj=client)
    batch_id = json.loads(listed.output)[0]["id"]
    results = runner.invoke(app, ["batches", "results", batch_id], obj=client)
    assert sorted(json.loads(line)["custom_id"] for line in results.output.splitlines()) == [
        "c0",
        "c1",
        "c2",
        "c3",
    ]
    got = runner.invoke(app, ["batches", "get", batch_id], obj=client)
    assert got.exit_code == 0 and "4 completed" in got.output
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{oops\n")
    failed = runner.invoke(
        app, ["batches", "submit", str(bad), "--endpoint", "sentiment-api"], obj=client
    )
    assert failed.exit_code == 1 and "line 1" in failed.output
