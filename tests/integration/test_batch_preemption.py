"""Batch work yields to online traffic on a live platform: an online request through the
gateway cancels the batch requests running on its replica, and their lines run again
later with exactly one result each and no attempt counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from regolo.server.batch.tables import BatchLine
from tests.integration.batch_support import add_external_endpoint, chat_line, jsonl, wait_for
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live import live_server

pytestmark = pytest.mark.timeout(240)
LINES = 8


@pytest.fixture
def replica() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer("fake-slow").start()
    server.behaviour.stream_chunks = 20
    server.behaviour.chunk_delay_seconds = 0.05  # a streamed batch line takes about 1 s
    yield server
    server.stop()


def in_flight(replica: FakeOpenAIServer) -> int:
    return sum(1 for connection in list(replica.connections) if connection.busy)


def test_an_online_request_preempts_batch_requests_on_its_replica(
    tmp_path: Path, replica: FakeOpenAIServer
) -> None:
    with live_server(tmp_path / "home", demo=False) as live:
        with live.client() as http:
            add_external_endpoint(http, "alpha", replica.address)
        live.wait_ready("alpha")
        with live.client() as http:
            lines = [chat_line(f"r{i}", "alpha") for i in range(LINES)]
            upload = http.post(
                "/v1/files", files={"file": ("in.jsonl", jsonl(lines))}, data={"purpose": "batch"}
            )
            body = {"input_file_id": upload.json()["id"], "endpoint_id": "alpha"}
            batch_id = http.post("/v1/batches", json=body).json()["id"]
            wait_for(lambda: in_flight(replica) >= 4, timeout=60, interval=0.02)  # every slot
            cancelled_before = replica.counters.cancellations

            online = http.post(
                "/v1/chat/completions",
                json={"model": "alpha", "messages": [{"role": "user", "content": "hi"}]},
            )

            assert online.status_code == 200, online.text
            wait_for(lambda: replica.counters.cancellations - cancelled_before >= 4, timeout=30)
            runner = live.platform.batch_runner  # type: ignore[attr-defined]
            assert runner.preemptions >= 4
            batch: dict[str, Any] = {}

            def done() -> bool:
                batch.update(http.get(f"/v1/batches/{batch_id}").json())
                return batch["status"] == "completed"

            wait_for(done, timeout=120)
            assert batch["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
            output = http.get(f"/v1/files/{batch['output_file_id']}/content").text.splitlines()
            custom_ids = sorted(json.loads(line)["custom_id"] for line in output)
            assert custom_ids == sorted(f"r{i}" for i in range(LINES))  # each exactly once
        with live.platform.db.read() as session:
            attempts = session.scalars(
                select(BatchLine.attempts).where(BatchLine.batch_id == batch_id)
            ).all()
        assert list(attempts) == [1] * LINES  # a preemption is not an attempt
