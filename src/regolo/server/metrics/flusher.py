"""The usage flusher: drains the gateway's ``UsageBuffer`` into metric rows in batches.

Exactly once (R18): a drained batch gets an id and stays pending until the transaction
that adds it commits; that transaction also records the id, so a retry after an
uncertain commit (connection lost on COMMIT) finds it and does not add it again.
Nothing drained is dropped on a database error: the batch waits for the next step.
Safe with several flushing processes (one per gateway) on one store.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from regolo.server.metrics.bucket_store import add_to_buckets, add_to_totals
from regolo.server.metrics.rollup import rollup_fine, sum_fine, totals_of
from regolo.server.metrics.tables import MetricFlush
from regolo.server.specs import UsageRecord
from regolo.server.store.database import Database

log = logging.getLogger("regolo.metrics")

# One transaction per flush at any gateway rate the buffer holds (its capacity): the
# per-transaction cost (ORM, row locks, fsync) dwarfs the per-record one, so splitting a
# flush into small transactions cost several percent of the gateway's CPU.
DEFAULT_BATCH_SIZE = 100_000


class UsageSource(Protocol):
    """What the flusher needs of the gateway's buffer."""

    def drain(self, max_records: int | None = None) -> list[UsageRecord]: ...


@dataclass
class _Batch:
    batch_id: str
    records: list[UsageRecord]


class UsageFlusher:
    def __init__(
        self,
        db: Database,
        usage: UsageSource,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.usage = usage
        self.batch_size = batch_size
        self.clock = clock
        self.flushed_records = 0
        self._pending: _Batch | None = None

    @property
    def pending_records(self) -> int:
        return len(self._pending.records) if self._pending else 0

    def flush(self, max_batches: int = 20) -> int:
        """Write what the buffer holds (up to ``max_batches`` batches); records written.

        Another batch follows only while the buffer still holds a backlog (the last one
        drained was full): records the gateway adds during a write wait for the next
        step, else a busy gateway kept the flusher writing transactions of a few dozen
        records each, every one costing a whole transaction (measured: up to 20 a step,
        four fifths of the flusher's CPU). A batch retried from an earlier step is
        followed by what the buffer holds now.
        """
        written = 0
        for _ in range(max_batches):
            retried = self._pending is not None
            batch = self._pending or self._next_batch()
            if batch is None:
                break
            self._pending = batch
            try:
                written += self._write(batch)
            except IntegrityError:
                # Another process created one of these rows first; retry on the next step.
                log.info("usage batch %s raced another writer; retried later", batch.batch_id)
                break
            self._pending = None
            if not retried and len(batch.records) < self.batch_size:
                break
        self.flushed_records += written
        return written

    def _next_batch(self) -> _Batch | None:
        records = self.usage.drain(self.batch_size)
        if not records:
            return None
        return _Batch(uuid.uuid4().hex, records)

    def _write(self, batch: _Batch) -> int:
        with self.db.write() as session:
            if session.get(MetricFlush, batch.batch_id) is not None:
                log.info("usage batch %s was already flushed; skipped", batch.batch_id)
                return 0
            fine = sum_fine(batch.records)
            add_to_buckets(session, rollup_fine(fine))
            add_to_totals(session, totals_of(fine))
            session.add(
                MetricFlush(
                    batch_id=batch.batch_id,
                    record_count=len(batch.records),
                    flushed_at=self.clock(),
                )
            )
        return len(batch.records)
