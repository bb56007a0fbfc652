"""The billing loop for the controller: ``make_loops(platform)``."""

from __future__ import annotations

from typing import Any

from regolo.server.billing.config import billing_config
from regolo.server.billing.meter import Meter


def make_loops(platform: Any) -> list[tuple[str, Any, float]]:
    if platform.catalog is None:
        return []
    config = billing_config(platform.settings)
    meter = Meter(platform.db, lambda: platform.catalog, config)

    async def meter_step() -> bool:
        result = meter.tick()
        if result.desired_state_changed:
            platform.notify_desired_state_changed()
        return result.desired_state_changed

    return [("billing", meter_step, config.meter_interval_seconds)]
