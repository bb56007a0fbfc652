"""Client disconnects (RELIABILITY R3): cancel a request's task when its client goes
away, which closes the upstream request; cheaply, since most requests end first."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Protocol

from regolo.server.gateway.request_body import Receive


class WatchedCall(Protocol):
    started_at: float  # time.perf_counter() at arrival
    responded: bool  # the response is complete: a disconnect no longer matters


# Answers faster than this never pay for a watcher task; slower ones (streams, long
# generations) still see a disconnect well within R3's second.
_WATCH_AFTER_SECONDS = 0.2
_SWEEP_EVERY_SECONDS = 0.1


class DisconnectWatch:
    """Cancel one request's task when its client goes away (R3): that closes the upstream.

    Waiting on ``receive`` needs a task of its own, which costs more than the rest of a
    fast request's chain; so ``DisconnectWatches`` starts it only for requests still
    in the upstream's hands after ``_WATCH_AFTER_SECONDS``.
    """

    __slots__ = ("_call", "_handler", "_receive", "_task", "done")

    def __init__(self, receive: Receive, call: WatchedCall, handler: asyncio.Task[Any]) -> None:
        self._handler = handler
        self._receive = receive
        self._call = call
        self._task: asyncio.Future[Any] | None = None
        self.done = False

    def cancel(self) -> None:
        self.done = True
        if self._task is not None:
            self._task.cancel()

    def start(self) -> None:
        if self.done or self._call.responded:
            return
        self._task = asyncio.ensure_future(self._receive(), loop=self._handler.get_loop())
        self._task.add_done_callback(self._on_message)

    def _on_message(self, task: asyncio.Future[Any]) -> None:
        if task.cancelled() or self._call.responded:
            return
        if task.exception() is None and task.result().get("type") == "http.disconnect":
            _DISCONNECTED.add(self._handler)
            self._handler.cancel()


class DisconnectWatches:
    """Starts the watchers of requests that outlive ``_WATCH_AFTER_SECONDS``.

    One timer for all requests, ticking only while some are in flight, instead of a
    timer (or a task) per request.
    """

    def __init__(self) -> None:
        self._pending: deque[tuple[float, DisconnectWatch]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, receive: Receive, call: WatchedCall) -> DisconnectWatch:
        # Given its loop, current_task skips get_running_loop's getpid() system call.
        handler = asyncio.current_task(self._loop) if self._loop is not None else None
        if handler is None:  # first request, or the gateway moved to another loop
            self._loop = asyncio.get_running_loop()
            self._pending.clear()  # the old loop's requests and timer are gone with it
            self._timer = None
            handler = asyncio.current_task(self._loop)
            assert handler is not None
        watch = DisconnectWatch(receive, call, handler)
        self._pending.append((call.started_at, watch))
        if self._timer is None:
            self._timer = handler.get_loop().call_later(_SWEEP_EVERY_SECONDS, self._sweep)
        return watch

    def _sweep(self) -> None:
        self._timer = None
        pending = self._pending
        due = time.perf_counter() - _WATCH_AFTER_SECONDS
        while pending and pending[0][0] <= due:
            pending.popleft()[1].start()
        while pending and pending[0][1].done:
            pending.popleft()
        if pending:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(_SWEEP_EVERY_SECONDS, self._sweep)


_DISCONNECTED: set[asyncio.Task[Any]] = set()


def uncancel_for_disconnect() -> bool:
    task = asyncio.current_task()
    if task is None or task not in _DISCONNECTED:
        return False
    _DISCONNECTED.discard(task)
    task.uncancel()
    return True
