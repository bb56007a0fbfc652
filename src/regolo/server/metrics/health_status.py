"""An endpoint's health in one word, from its replica counts (pure)."""

from __future__ import annotations


def endpoint_health_status(*, desired: int, ready: int, endpoint_status: str) -> str:
    """``healthy`` (every wanted replica ready), ``degraded`` (some), ``unhealthy`` (none),
    ``starting`` (none yet, still deploying), ``failed``, or ``scaled_to_zero``."""
    if endpoint_status == "failed" and ready == 0:
        return "failed"
    if desired == 0:
        return "scaled_to_zero" if ready == 0 else "healthy"
    if ready >= desired:
        return "healthy"
    if ready > 0:
        return "degraded"
    if endpoint_status in ("pending", "deploying", "starting"):
        return "starting"
    return "unhealthy"
