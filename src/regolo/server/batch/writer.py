"""Group commit of batch results: results that finish while a write is under way go
to the store together in the next transaction, each with the claim of its worker's
next line. A line is still done exactly once: each result lands only while its claim
token matches (``jobs.finish_lines``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from regolo.server.batch import jobs
from regolo.server.batch.jobs import ClaimedLine, LineResult
from regolo.server.store.database import Database

_Queued = tuple[ClaimedLine, LineResult, bool, "asyncio.Future[ClaimedLine | None]"]


class ResultWriter:
    def __init__(self, db: Database, clock: Callable[[], datetime], lease_seconds: float) -> None:
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self._queue: list[_Queued] = []
        self._task: asyncio.Task[None] | None = None

    async def finish(
        self, claimed: ClaimedLine, result: LineResult, *, claim_next: bool
    ) -> ClaimedLine | None:
        """Store ``result``; the worker's next line when ``claim_next`` and one is left."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ClaimedLine | None] = loop.create_future()
        self._queue.append((claimed, result, claim_next, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._write())
        return await future

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def _write(self) -> None:
        while self._queue:
            queued, self._queue = self._queue, []
            finished = [(claimed, result, claim_next) for claimed, result, claim_next, _ in queued]
            try:
                following = await asyncio.to_thread(
                    jobs.finish_lines, self.db, finished, self.clock(), self.lease_seconds
                )
            except Exception as error:
                for *_, future in queued:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (*_, future), line in zip(queued, following, strict=True):
                if not future.done():
                    future.set_result(line)
                elif line is not None:  # its worker is gone: the line goes back at once
                    await asyncio.to_thread(jobs.release_line, self.db, line)
