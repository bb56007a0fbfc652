"""The metric store on SQLite and PostgreSQL: a known load in simulated time reads back
exactly (counts, error rate, availability, CPU), percentiles within bucket precision,
and a retried flush never counts a record twice (R18)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from regolo.server.control.health import HealthChecker
from regolo.server.gateway.usage import UsageBuffer
from regolo.server.metrics.bucket_store import delete_expired
from regolo.server.metrics.flusher import UsageFlusher
from regolo.server.metrics.percentiles import LATENCY_BOUNDS_MS, bucket_index
from regolo.server.metrics.probes import ProbeRecorder
from regolo.server.metrics.query import window_stats
from regolo.server.metrics.rollup import RESOLUTIONS_SECONDS, TIME_RANGES, retention_cutoff
from regolo.server.metrics.stats import BucketStats, stat_names
from regolo.server.metrics.summary import summarize
from regolo.server.metrics.tables import MetricBucket, MetricFlush, MetricTotal
from regolo.server.specs import ObservedReplica, ReplicaHandle, UsageRecord
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade
from regolo.server.store.tables import (
    Account,
    Deployment,
    Endpoint,
    Model,
    ModelVersion,
    Replica,
)
from tests.support.fake_openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.write_engine)
    yield database
    database.dispose()


def usage(at: datetime, *, status: int, latency_ms: float, version: str = "1.0",
          completion_tokens: int = 0) -> UsageRecord:  # fmt: skip
    return UsageRecord(
        at=at.timestamp(), account_id="acc", key_id="key",
        endpoint_id="ep_1",
        deployment_id="dep_1", version=version, replica_id="rep_1", status_code=status,
        latency_ms=latency_ms, completion_tokens=completion_tokens, prompt_tokens=3,
    )  # fmt: skip


def test_known_request_load_reads_back_exactly(db: Database) -> None:
    buffer = UsageBuffer()
    n_requests, n_failed = 200, 17
    latencies = [10.0 + (i % 50) * 9.7 for i in range(n_requests)]  # 10 .. 485 ms
    for i, latency in enumerate(latencies):
        at = T0 + timedelta(seconds=i * 3)  # 10 minutes of traffic
        status = 500 if i < 10 else 504 if i < n_failed else 200
        version = "1.1" if i % 4 == 0 else "1.0"
        buffer.record(usage(at, status=status, latency_ms=latency, version=version,
                            completion_tokens=5))  # fmt: skip
    buffer.record(usage(T0, status=429, latency_ms=1.0))  # the caller's fault: no error
    flusher = UsageFlusher(db, buffer, batch_size=64)
    assert flusher.flush() == n_requests + 1
    assert len(buffer) == 0

    with db.read() as session:
        found = window_stats(session, "ep_1", TIME_RANGES["15m"], T0 + timedelta(minutes=10))
    total = summarize(found.total)
    assert total.request_count == n_requests + 1
    assert total.error_count == n_failed
    assert total.error_rate == pytest.approx(n_failed / (n_requests + 1))
    assert total.completion_tokens == 5 * n_requests
    everything = [*latencies, 1.0]
    assert total.avg_latency_ms == pytest.approx(sum(everything) / len(everything))
    for quantile, estimate in ((0.5, total.p50_latency_ms), (0.95, total.p95_latency_ms),
                               (0.99, total.p99_latency_ms)):  # fmt: skip
        truth = sorted(everything)[int(-(-quantile * len(everything) // 1)) - 1]
        index = bucket_index(truth)
        lower = LATENCY_BOUNDS_MS[index - 1] if index else 0.0
        assert estimate is not None and lower <= estimate <= LATENCY_BOUNDS_MS[index]
    canary = summarize(found.versions["1.1"])
    assert canary.request_count == 50
    assert canary.error_count == sum(1 for i in range(n_failed) if i % 4 == 0)
    # the series adds up to the total
    assert sum(stats.request_count for _, stats in found.series) == n_requests + 1
    # the 24 h view (1 min buckets) and the 7 d view (1 h buckets) agree with the 10 s view
    with db.read() as session:
        for name in ("24h", "7d", "30d"):
            coarse = window_stats(session, "ep_1", TIME_RANGES[name], T0 + timedelta(minutes=10))
            assert same_stats(coarse.total, found.total), name


def same_stats(left: BucketStats, right: BucketStats) -> bool:
    """Equal counts; float sums equal up to summation order."""
    for name in stat_names():
        a, b = getattr(left, name), getattr(right, name)
        if isinstance(a, float) and a != pytest.approx(b):
            return False
        if not isinstance(a, float) and a != b:
            return False
    return True


@contextmanager
def commit_then_fail(db: Database) -> Iterator[None]:
    """The next write commits, then raises, as a connection lost on COMMIT would."""
    original = db.write

    @contextmanager
    def write():  # type: ignore[no-untyped-def]
        with original() as session:
            yield session
        db.write = original  # type: ignore[method-assign]
        raise ConnectionError("lost after commit")

    db.write = write  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.write = original  # type: ignore[method-assign]


def test_a_retried_flush_never_counts_twice(db: Database) -> None:
    buffer = UsageBuffer()
    for i in range(10):
        buffer.record(usage(T0, status=200, latency_ms=20.0))
    flusher = UsageFlusher(db, buffer)
    with commit_then_fail(db), pytest.raises(ConnectionError):
        flusher.flush()
    assert flusher.pending_records == 10  # kept, since the commit was uncertain
    buffer.record(usage(T0, status=200, latency_ms=20.0))
    assert flusher.flush() == 1  # the retried batch was found and skipped; the new one added
    with db.read() as session:
        counted = session.scalar(
            select(func.sum(MetricBucket.request_count)).where(
                MetricBucket.resolution_seconds == 10
            )
        )
        totals = session.scalar(select(func.sum(MetricTotal.request_count)))
    assert counted == 11 and totals == 11


def test_records_arriving_during_a_write_wait_for_the_next_step(db: Database) -> None:
    """A busy gateway adds records while a flush writes: they go in the next step's
    transaction, not in a stream of tiny ones; a backlog still drains in one step."""

    class BusyGateway(UsageBuffer):
        def drain(self, max_records: int | None = None) -> list[UsageRecord]:
            drained = super().drain(max_records)
            for _ in range(3):  # what the gateway records while this batch is written
                self.record(usage(T0, status=200, latency_ms=20.0))
            return drained

    buffer = BusyGateway()
    for _ in range(10):
        buffer.record(usage(T0, status=200, latency_ms=20.0))
    flusher = UsageFlusher(db, buffer, batch_size=8)
    assert flusher.flush() == 8 + 5  # a full batch (a backlog), then what remained
    assert len(buffer) == 3  # recorded during the last write: the next step's
    assert flusher.flush() == 3
    with db.read() as session:
        transactions = session.scalar(select(func.count()).select_from(MetricFlush))
        found = window_stats(session, "ep_1", TIME_RANGES["15m"], T0)
    assert transactions == 3 and found.total.request_count == 16


def test_a_failed_flush_loses_nothing(db: Database) -> None:
    buffer = UsageBuffer()
    for i in range(5):
        buffer.record(usage(T0, status=200, latency_ms=20.0))
    flusher = UsageFlusher(db, buffer)
    original = db.write

    @contextmanager
    def broken():  # type: ignore[no-untyped-def]
        raise ConnectionError("database down")
        yield

    db.write = broken  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        flusher.flush()
    db.write = original  # type: ignore[method-assign]
    assert flusher.flush() == 5
    with db.read() as session:
        found = window_stats(session, "ep_1", TIME_RANGES["15m"], T0)
    assert found.total.request_count == 5


def test_retention_bounds_every_resolution(db: Database) -> None:
    buffer = UsageBuffer()
    hours = range(0, 24 * 40, 5)  # a request every 5 hours for 40 days
    for hour in hours:
        buffer.record(usage(T0 + timedelta(hours=hour, minutes=59), status=200,
                            latency_ms=5.0))  # fmt: skip
    now = T0 + timedelta(hours=24 * 40)
    buffer.record(usage(now - timedelta(minutes=1), status=200, latency_ms=5.0))
    UsageFlusher(db, buffer).flush(max_batches=1000)
    with db.write() as session:
        assert delete_expired(session, now) > 0
    with db.read() as session:
        kept = session.execute(
            select(MetricBucket.resolution_seconds, MetricBucket.bucket_start)
        ).all()
        totals = session.scalar(select(func.sum(MetricTotal.request_count)))
    for resolution in RESOLUTIONS_SECONDS:
        starts = [start for res, start in kept if res == resolution]
        assert starts, resolution
        assert min(starts) >= retention_cutoff(now, resolution)
        assert min(starts) < retention_cutoff(now, resolution) + timedelta(hours=5)
    assert totals == len(hours) + 1  # the Prometheus counters are never trimmed


class SteeredBackend:
    """Replicas are alive unless the test says otherwise; each uses 0.5 cores."""

    def __init__(self) -> None:
        self.dead: set[str] = set()

    async def observe(self, handles: list[ReplicaHandle]) -> list[ObservedReplica]:
        return [
            ObservedReplica(
                handle=h,
                alive=h.replica_id not in self.dead,
                exit_code=137 if h.replica_id in self.dead else None,
                cpu_cores_used=None if h.replica_id in self.dead else 0.5,
                memory_bytes=None if h.replica_id in self.dead else 2**30,
            )
            for h in handles
        ]

    def logs(self, handle: ReplicaHandle, lines: int = 100) -> str:
        return ""


def seed_endpoint(db: Database, address: str) -> None:
    with db.write() as session:
        session.add(Account(id="acc", name="acc"))
        session.add(Model(id="mod_1", account_id="acc", name="m"))
        session.flush()
        session.add(ModelVersion(id="mv_1", model_id="mod_1", version="1.0", source_kind="local",
                                 source_uri="/x", status="ready"))  # fmt: skip
        session.flush()
        session.add(Endpoint(id="ep_1", account_id="acc", name="sentiment-api", model_id="mod_1",
                             status="ready", cpu_request="2", memory_request="4Gi"))  # fmt: skip
        session.flush()
        session.add(Deployment(id="dep_1", endpoint_id="ep_1", model_version_id="mv_1",
                               version="1.0", traffic_weight=1.0, replicas=1))  # fmt: skip
        session.flush()
        add_replica(session, "rep_1", address, started=T0)


def add_replica(session, replica_id: str, address: str, started: datetime) -> None:  # type: ignore[no-untyped-def]
    session.add(Replica(id=replica_id, deployment_id="dep_1", state="starting", backend="fake",
                        runtime="external", instance_type="cpu-small", address=address,
                        auth_token="t", started_at=started, pid=1))  # fmt: skip


def test_replica_stopped_for_a_known_time_sets_availability(db: Database) -> None:
    server = FakeOpenAIServer("rep").start()
    try:
        clock = SimClock(T0)
        backend = SteeredBackend()
        seed_endpoint(db, server.address)
        checker = HealthChecker(db, backend, start_timeout_seconds=60, clock=clock)
        checker.observers.append(ProbeRecorder(db))

        async def ticks(count: int) -> None:
            for _ in range(count):
                await checker.tick()
                clock.advance(2)

        async def scenario() -> None:
            await ticks(30)  # up: 30 ticks (the first makes it ready: it counts as up)
            backend.dead.add("rep_1")  # killed: the endpoint is down until a replacement is up
            await ticks(12)
            with db.write() as session:  # the reconciler's replacement
                add_replica(session, "rep_2", server.address, started=clock())
            await ticks(18)
            await checker.aclose()

        asyncio.run(scenario())
    finally:
        server.stop()

    buffer = UsageBuffer()
    for i in range(40):  # 40 requests while it was up, 4 of them failed
        buffer.record(usage(T0 + timedelta(seconds=i), status=502 if i % 10 == 0 else 200,
                            latency_ms=30.0))  # fmt: skip
    UsageFlusher(db, buffer).flush()
    with db.read() as session:
        found = window_stats(session, "ep_1", TIME_RANGES["15m"], clock())
    total = summarize(found.total)
    assert found.total.probe_total == 60
    assert found.total.probe_ok == 48  # 12 ticks down
    assert total.availability == pytest.approx((48 + 36) / (60 + 40))
    assert total.error_rate == pytest.approx(4 / 40)
    # 0.5 cores of the 2 requested, in each of the 48 ticks a replica was alive
    assert found.total.cpu_samples == 48
    assert total.cpu_usage == pytest.approx(0.25)
    assert total.memory_usage == pytest.approx(0.25)


def test_two_gateways_flushing_at_once_count_everything_once(
    db: Database, database_url: str
) -> None:
    import threading

    other_db = Database(database_url)  # a second process's connection pool
    buffers = [UsageBuffer(), UsageBuffer()]
    for buffer in buffers:
        for i in range(300):
            buffer.record(usage(T0 + timedelta(seconds=i % 30),
                                status=200, latency_ms=20.0))  # fmt: skip
    flushers = [UsageFlusher(db, buffers[0], batch_size=50),
                UsageFlusher(other_db, buffers[1], batch_size=50)]  # fmt: skip
    start = threading.Barrier(2)

    def drain(flusher: UsageFlusher) -> None:
        start.wait()
        for _ in range(200):
            flusher.flush()
            if flusher.pending_records == 0 and len(flusher.usage) == 0:  # type: ignore[arg-type]
                return

    threads = [threading.Thread(target=drain, args=(f,)) for f in flushers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other_db.dispose()
    with db.read() as session:
        found = window_stats(session, "ep_1", TIME_RANGES["15m"], T0 + timedelta(minutes=1))
        totals = session.scalar(select(func.sum(MetricTotal.request_count)))
    assert found.total.request_count == 600 and totals == 600
