"""Client disconnects (RELIABILITY R3): cancel a request's task when its client goes
away, which closes the upstream request; cheaply, since most requests end first."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from regolo.server.gateway.request_body import Receive


class WatchedCall(Protocol):
    """Hashable by identity (a dict key while its request is in flight)."""

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

    A request in the upstream's hands is one dict entry (added by ``watch``, removed
    by ``done``), so nothing of it outlives the request; one timer, ticking only while
    requests are young, starts the watchers of those that got old.
    """

    def __init__(self) -> None:
        # Arrival order: the oldest first, so a sweep stops at the first young one.
        self._young: dict[WatchedCall, tuple[Receive, asyncio.Task[Any]]] = {}
        self._watched: dict[WatchedCall, DisconnectWatch] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, receive: Receive, call: WatchedCall) -> None:
        """From now until ``done(call)``, a disconnect of ``call``'s client cancels it."""
        # Given its loop, current_task skips get_running_loop's getpid() system call.
        handler = asyncio.current_task(self._loop) if self._loop is not None else None
        if handler is None:  # first request, or the gateway moved to another loop
            self._loop = asyncio.get_running_loop()
            self._young.clear()  # the old loop's requests and timer are gone with it
            self._watched.clear()
            self._timer = None
            handler = asyncio.current_task(self._loop)
            assert handler is not None
        self._young[call] = (receive, handler)
        if self._timer is None:
            self._timer = handler.get_loop().call_later(_SWEEP_EVERY_SECONDS, self._sweep)

    def done(self, call: WatchedCall) -> None:
        if self._young.pop(call, None) is None:
            watch = self._watched.pop(call, None)
            if watch is not None:
                watch.cancel()

    def _sweep(self) -> None:
        self._timer = None
        due = time.perf_counter() - _WATCH_AFTER_SECONDS
        old = []
        for call in self._young:
            if call.started_at > due:
                break
            old.append(call)
        for call in old:
            receive, handler = self._young.pop(call)
            watch = self._watched[call] = DisconnectWatch(receive, call, handler)
            watch.start()
        if self._young:
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
