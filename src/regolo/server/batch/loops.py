"""The batch runner as a controller loop: ``make_loops(platform)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from regolo.server.batch.files import FileStore
from regolo.server.batch.limits import limits_from
from regolo.server.batch.runner import BatchRunner, RunnerDeps
from regolo.server.gateway.routing_table import RoutingTable

STEP_INTERVAL_SECONDS = 0.5


def make_runner(platform: Any) -> BatchRunner:
    limits = limits_from(platform.settings)
    gateway = platform.gateway

    def routes() -> RoutingTable:
        return gateway.table if gateway is not None else RoutingTable()

    def online(replica_id: str) -> int:
        return int(gateway.picker.outstanding.get(replica_id, 0)) if gateway is not None else 0

    runner = BatchRunner(
        RunnerDeps(
            db=platform.db,
            store=FileStore(platform.settings.files_dir, max_file_bytes=limits.max_file_bytes),
            limits=limits,
            routes=routes,
            online_outstanding=online,
            online_visible=gateway is not None,
            body_limits=gateway.limits if gateway is not None else _default_body_limits(),
            record_usage=platform.usage.record,
            on_no_ready_replica=lambda endpoint_id: platform.notify_desired_state_changed(),
        )
    )
    if gateway is not None:
        gateway.picker.on_change = runner.notice_online  # online requests preempt batch work
    return runner


def make_loops(platform: Any) -> list[tuple[str, Callable[[], Awaitable[bool]], float]]:
    runner = make_runner(platform)
    platform.batch_runner = runner  # for tests and shutdown
    return [("batch", runner.step, STEP_INTERVAL_SECONDS)]


def _default_body_limits() -> Any:
    from regolo.server.gateway.request_body import BodyLimits

    return BodyLimits()
