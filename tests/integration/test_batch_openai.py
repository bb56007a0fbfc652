"""The real ``openai`` client's batch flow against a live platform and the demo model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from tests.integration.batch_support import chat_line, jsonl
from tests.support.live import live_server

pytestmark = pytest.mark.timeout(420)


def test_openai_files_and_batches_flow_with_the_demo_model(home: Path) -> None:
    with live_server(home, demo=True) as live:
        live.wait_ready("demo", timeout=240)
        client = openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=live.admin_key)
        lines = [chat_line(f"q-{i}", max_tokens=8) for i in range(3)]
        uploaded = client.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
        assert uploaded.purpose == "batch" and uploaded.bytes > 0
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"job": "nightly"},
        )
        assert batch.status == "validating"
        deadline = time.monotonic() + 240
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            assert time.monotonic() < deadline, f"batch stuck: {batch}"
            time.sleep(0.5)
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed", batch
        assert batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (3, 3)
        assert batch.output_file_id and batch.error_file_id is None
        content = client.files.content(batch.output_file_id).text
        results = [json.loads(line) for line in content.splitlines()]
        assert sorted(r["custom_id"] for r in results) == ["q-0", "q-1", "q-2"]
        for result in results:
            assert result["response"]["status_code"] == 200
            assert result["response"]["body"]["choices"][0]["message"]["content"] is not None
        assert [b.id for b in client.batches.list()] == [batch.id]
        assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"
