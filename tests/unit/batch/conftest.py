"""A real store (SQLite, or PostgreSQL where reachable), a real fake replica over HTTP,
and a runner wired to them with a simulated clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from regolo.server.batch import jobs
from regolo.server.batch.files import FileStore, new_file_id
from regolo.server.batch.limits import BatchLimits
from regolo.server.batch.runner import BatchRunner, RunnerDeps
from regolo.server.batch.status import FINAL
from regolo.server.batch.tables import BatchFile, BatchJob
from regolo.server.gateway.routing_table import (
    RouteDeployment,
    RouteEndpoint,
    RouteReplica,
    RoutingTable,
)
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade
from regolo.server.store.tables import Account, Endpoint, Model
from tests.support.fake_openai_server import FakeOpenAIServer

ACCOUNT = "acct_test"
ENDPOINT = "sentiment-api"


@dataclass
class SimClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class BatchWorld:
    db: Database
    store: FileStore
    clock: SimClock
    replica: FakeOpenAIServer
    limits: BatchLimits
    online: dict[str, int] = field(default_factory=dict)

    def runner(self, **limit_overrides: Any) -> BatchRunner:
        limits = BatchLimits(**{**self.limits.__dict__, **limit_overrides})
        return BatchRunner(
            RunnerDeps(
                db=self.db,
                store=self.store,
                limits=limits,
                routes=self.routes,
                online_outstanding=lambda replica_id: self.online.get(replica_id, 0),
                clock=self.clock,
            )
        )

    def routes(self) -> RoutingTable:
        replica = RouteReplica(replica_id="rep_1", address=self.replica.address)
        deployment = RouteDeployment(
            deployment_id="dep_1",
            version="1.0",
            traffic_weight=1.0,
            served_model_name="model",
            replicas=(replica,),
        )
        endpoint = RouteEndpoint(
            endpoint_id="ep_1",
            name=ENDPOINT,
            account_id=ACCOUNT,
            model_name="sentiment-classifier",
            deployments=(deployment,),
        )
        return RoutingTable(endpoints=(endpoint,))

    def submit(
        self,
        lines: list[Any] | bytes,
        *,
        endpoint_name: str | None = ENDPOINT,
        window_seconds: int = 86400,
        scopes: tuple[str, ...] = ("admin",),
    ) -> str:
        data = lines if isinstance(lines, bytes) else to_jsonl(lines)
        file_id = new_file_id()
        self.store.write_bytes(file_id, data)
        batch_id = f"batch_{file_id.removeprefix('file-')[:16]}"
        now = self.clock()
        with self.db.write() as session:
            session.add(
                BatchFile(
                    id=file_id,
                    account_id=ACCOUNT,
                    key_id="key_1",
                    purpose="batch",
                    filename="in.jsonl",
                    bytes=len(data),
                    created_at=now,
                )
            )
            session.add(
                BatchJob(
                    id=batch_id,
                    account_id=ACCOUNT,
                    key_id="key_1",
                    scopes=list(scopes),
                    endpoint_name=endpoint_name,
                    url="/v1/chat/completions",
                    completion_window="24h",
                    input_file_id=file_id,
                    status="validating",
                    created_at=now,
                    expires_at=now + timedelta(seconds=window_seconds),
                )
            )
        return batch_id

    def batch(self, batch_id: str) -> BatchJob:
        with self.db.read() as session:
            row = session.get(BatchJob, batch_id)
            assert row is not None
            return row

    def file_lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if file_id is None:
            return []
        data = b"".join(self.store.read_chunks(file_id))
        return [json.loads(line) for line in data.splitlines()]


def to_jsonl(lines: list[Any]) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


def chat_line(custom_id: str, **body: Any) -> dict[str, Any]:
    payload = {
        "model": "sentiment-classifier",
        "messages": [{"role": "user", "content": custom_id}],
    }
    payload.update(body)
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": payload,
    }


async def run_until(
    runner: BatchRunner,
    done: Callable[[], bool],
    *,
    timeout_seconds: float = 30.0,
    between: Callable[[], None] | None = None,
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while not done():
        assert asyncio.get_running_loop().time() < deadline, "the batch did not finish in time"
        await runner.step()
        if between is not None:
            between()
        await asyncio.sleep(0.02)


def is_final(world: BatchWorld, batch_id: str) -> Callable[[], bool]:
    return lambda: world.batch(batch_id).status in FINAL


@pytest.fixture(params=["sqlite", "postgres"])
def batch_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'batch.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    upgrade(db.write_engine)
    with db.write() as session:
        session.add(Account(id=ACCOUNT, name="test"))
        session.flush()
        session.add(Model(id="mdl_1", account_id=ACCOUNT, name="sentiment-classifier"))
        session.flush()
        session.add(Endpoint(id="ep_1", account_id=ACCOUNT, name=ENDPOINT, model_id="mdl_1"))
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def world(batch_db: Database, tmp_path: Path) -> Iterator[BatchWorld]:
    replica = FakeOpenAIServer("rep_1").start()
    limits = BatchLimits(max_inflight_per_batch=4, slots_per_replica=4, idle_backoff_seconds=0.01)
    try:
        yield BatchWorld(
            db=batch_db,
            store=FileStore(tmp_path / "files", max_file_bytes=10_000_000),
            clock=SimClock(),
            replica=replica,
            limits=limits,
        )
    finally:
        replica.stop()


__all__ = ["jobs"]
