"""R15: the platform is SIGKILLed at random points while a 200-line batch runs, then
restarted, repeatedly. Every custom_id must get exactly one result, the counts must be
right, and the output file must be what a fresh finalize builds, byte for byte."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from regolo.server.batch import jobs
from regolo.server.batch.files import FileStore
from regolo.server.demo import demo_gguf_path
from regolo.server.store.database import Database
from tests.integration.batch_support import add_external_endpoint, chat_line, jsonl, wait_for
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.support.live import free_port

pytestmark = pytest.mark.timeout(420)
LINES = 200
KILLS = 8
MAX_IN_FLIGHT_PER_RUN = 32  # BatchLimits.max_inflight_per_batch: what one kill may repeat
LAUNCH = (
    "import sys; from regolo.server.main import serve; serve(port=int(sys.argv[1]), demo=False)"
)


class Platform:
    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        gguf = demo_gguf_path()
        assert gguf is not None
        self.env = {
            **os.environ,
            "REGOLO_HOME": str(home),
            "REGOLO_ALLOWED_LOCAL_ROOTS": json.dumps([str(gguf.parent)]),
            "REGOLO_LOG_LEVEL": "warning",
        }

    def start(self) -> None:
        log = (self.home.parent / "platform.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(self.port)], env=self.env, stdout=log, stderr=log
        )
        wait_for(self._healthy, timeout=60, interval=0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def client(self) -> httpx.Client:
        key = (self.home / "admin-key").read_text().strip()
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def _healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "platform exited"
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def replica() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer("counting", record_bodies=False).start()
    server.behaviour.mode, server.behaviour.delay_seconds = "slow", 0.1
    yield server
    server.stop()


def test_kill_loop_gives_exactly_one_result_per_custom_id(
    tmp_path: Path, replica: FakeOpenAIServer
) -> None:
    rng = random.Random(int(os.environ.get("REGOLO_R15_SEED", "15")))
    platform = Platform(tmp_path / "home", free_port())
    platform.start()
    try:
        with platform.client() as http:
            add_external_endpoint(http, "counted", replica.address)
            wait_for(lambda: http.get("/v1/endpoints/counted").json()["status"] == "ready")
            lines = [chat_line(f"id-{i:03d}", "counted") for i in range(LINES)]
            file_id = http.post(
                "/v1/files", files={"file": ("in.jsonl", jsonl(lines))}, data={"purpose": "batch"}
            ).json()["id"]
            batch = http.post(
                "/v1/batches", json={"input_file_id": file_id, "endpoint_id": "counted"}
            ).json()
        kills = 0
        while kills < KILLS and not _final(platform, batch["id"]):
            time.sleep(rng.uniform(0.2, 1.5))
            platform.kill()
            kills += 1
            platform.start()
        with platform.client() as http:
            wait_for(lambda: _final(platform, batch["id"]), timeout=120)
            done = http.get(f"/v1/batches/{batch['id']}").json()
            content = http.get(f"/v1/files/{done['output_file_id']}/content").content
    finally:
        platform.stop()

    print(json.dumps({"kills": kills, "replica_requests": replica.counters.requests}))
    assert kills >= 3, "the batch finished before enough kills; slow the replica down"
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    assert done["error_file_id"] is None
    ids = [json.loads(line)["custom_id"] for line in content.splitlines()]
    assert sorted(ids) == [f"id-{i:03d}" for i in range(LINES)]  # each exactly once
    # only requests in flight at a kill may have run twice
    assert LINES <= replica.counters.requests <= LINES + kills * MAX_IN_FLIGHT_PER_RUN
    db = Database(f"sqlite:///{tmp_path / 'home' / 'regolo.db'}")
    try:
        rebuilt, errors = jobs.build_files_for(db, batch["id"], "completed")
        assert rebuilt == content and errors == b""
        store = FileStore(tmp_path / "home" / "files", max_file_bytes=10**9)
        assert jobs.finalize(db, store, batch["id"], datetime.now(UTC)) is None
        assert b"".join(store.read_chunks(done["output_file_id"])) == content
    finally:
        db.dispose()


def _final(platform: Platform, batch_id: str) -> bool:
    try:
        with platform.client() as http:
            status = http.get(f"/v1/batches/{batch_id}").json()["status"]
    except httpx.HTTPError:
        return False
    return status in ("completed", "failed", "expired", "cancelled")
