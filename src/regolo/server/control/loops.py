"""The controller: every control loop on its own tick, each guarded so one failure never
stops the others. It runs on its own thread and event loop, so database work and probes
never delay requests on the gateway's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("regolo.controller")

Step = Callable[[], Awaitable[bool]]  # returns whether something changed


@dataclass
class Loop:
    name: str
    step: Step
    interval_seconds: float
    failures: int = 0
    last_duration_seconds: float = 0.0
    runs: int = 0


@dataclass
class Controller:
    loops: list[Loop] = field(default_factory=list)
    on_change: Callable[[], None] = lambda: None
    on_start: Callable[[], Awaitable[None]] | None = None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _wake: asyncio.Event | None = None

    def add(self, name: str, step: Step, interval_seconds: float) -> None:
        self.loops.append(Loop(name, step, interval_seconds))

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="regolo-controller", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(timeout)

    def poke(self) -> None:
        """Run every loop now (after an API write), instead of at its next tick."""
        if self._loop and self._wake:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        ready.set()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        if self.on_start is not None:
            try:
                await self.on_start()
            except Exception:
                log.exception("controller start-up step failed")
        assert self._stopping is not None and self._wake is not None
        next_run = {loop.name: 0.0 for loop in self.loops}
        while not self._stopping.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            changed = False
            for loop in self.loops:
                if woken or time.monotonic() >= next_run[loop.name]:
                    changed |= await self._guarded(loop)
                    next_run[loop.name] = time.monotonic() + loop.interval_seconds
            if changed:
                self._notify()
            wait = max(0.05, min(next_run.values()) - time.monotonic())
            await _first_of(self._stopping, self._wake, wait_seconds=wait)

    async def _guarded(self, loop: Loop) -> bool:
        started = time.monotonic()
        try:
            changed = await loop.step()
            loop.failures = 0
            return changed
        except Exception:
            loop.failures += 1
            log.exception("control loop %s failed (%d in a row)", loop.name, loop.failures)
            return False
        finally:
            loop.runs += 1
            loop.last_duration_seconds = time.monotonic() - started

    def _notify(self) -> None:
        try:
            self.on_change()
        except Exception:
            log.exception("routing update failed")


async def _first_of(*events: asyncio.Event, wait_seconds: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
