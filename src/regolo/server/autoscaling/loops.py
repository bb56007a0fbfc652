"""The autoscaling package's control loops: the autoscaler and the canary analysis.

Registered by ``Platform`` through ``make_loops``. Both read the gateway's in-memory
signals (a usage tap and the picker's in-flight counters), never the metrics store, so
the first decision after a load step comes within a tick or two of the panic window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete

from regolo.server.autoscaling.canary import CanaryAnalyzer
from regolo.server.autoscaling.loop import Autoscaler
from regolo.server.autoscaling.signals import UsageTap
from regolo.server.autoscaling.tables import AutoscalingEvent

if TYPE_CHECKING:
    from regolo.server.gateway.app import Gateway
    from regolo.server.platform import Platform

AUTOSCALE_INTERVAL_SECONDS = 1.0
CANARY_INTERVAL_SECONDS = 1.0
RETENTION_INTERVAL_SECONDS = 3600.0
EVENT_RETENTION = timedelta(days=30)

Step = Callable[[], Awaitable[bool]]


class GatewayLoad:
    """The gateway's live counters; read from the controller's thread (plain dict reads)."""

    def __init__(self, gateway: Gateway | None) -> None:
        self.gateway = gateway

    def in_flight(self, replica_ids: Iterable[str]) -> int:
        if self.gateway is None:
            return 0
        outstanding = self.gateway.picker.outstanding
        return sum(max(0, outstanding.get(replica_id, 0)) for replica_id in replica_ids)

    def waiting(self, endpoint_id: str) -> int:
        return self.gateway.waiting(endpoint_id) if self.gateway is not None else 0


def make_loops(platform: Platform) -> list[tuple[str, Step, float]]:
    tap = UsageTap()
    platform.usage.listeners.append(tap)
    autoscaler = Autoscaler(platform.db, tap, GatewayLoad(platform.gateway))
    canaries = CanaryAnalyzer(platform.db, tap)

    async def autoscale() -> bool:
        if autoscaler.tick():
            platform.notify_desired_state_changed()
        return False  # routing was already published by the notification

    async def analyze_canaries() -> bool:
        if canaries.tick():
            platform.notify_desired_state_changed()
        return False

    async def trim_events() -> bool:
        cutoff = datetime.now(UTC) - EVENT_RETENTION
        with platform.db.write() as session:
            session.execute(delete(AutoscalingEvent).where(AutoscalingEvent.at < cutoff))
        return False

    return [
        ("autoscaler", autoscale, AUTOSCALE_INTERVAL_SECONDS),
        ("canary-analysis", analyze_canaries, CANARY_INTERVAL_SECONDS),
        ("autoscaling-retention", trim_events, RETENTION_INTERVAL_SECONDS),
    ]
