"""An endpoint's status, derived from recorded facts about its deployments."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EndpointStatus(enum.StrEnum):
    PENDING = "pending"
    DEPLOYING = "deploying"
    READY = "ready"
    UPDATING = "updating"
    DEGRADED = "degraded"
    FAILED = "failed"
    SCALED_TO_ZERO = "scaled_to_zero"
    PAUSED_INSUFFICIENT_CREDIT = "paused_insufficient_credit"
    DELETING = "deleting"


@dataclass(frozen=True, kw_only=True)
class DeploymentFacts:
    version: str
    traffic_weight: float
    desired: int
    ready: int
    starting: int
    unhealthy: int
    failed: bool  # gave up after repeated start failures
    ever_ready: bool
    last_error: str | None = None
    waiting_reason: str | None = None  # e.g. not enough capacity


def endpoint_status(
    deployments: list[DeploymentFacts], *, deleted: bool
) -> tuple[EndpointStatus, str | None]:
    if deleted:
        return EndpointStatus.DELETING, None
    serving = [d for d in deployments if d.traffic_weight > 0] or deployments
    failed = [d for d in serving if d.failed]
    if failed:
        why = f"version {failed[0].version}: {failed[0].last_error}"
        # A failed canary beside a ready stable version: its share goes to the stable one.
        still_serving = any(d.ready > 0 for d in serving if not d.failed)
        return (EndpointStatus.DEGRADED if still_serving else EndpointStatus.FAILED), why
    if sum(d.desired for d in deployments) == 0:
        return EndpointStatus.SCALED_TO_ZERO, None
    if all(d.ready >= d.desired for d in deployments):
        return EndpointStatus.READY, None
    reason = next((d.waiting_reason for d in deployments if d.waiting_reason), None)
    if not any(d.ever_ready for d in deployments):
        if any(d.starting for d in deployments):
            return EndpointStatus.DEPLOYING, reason
        return EndpointStatus.PENDING, reason
    if any(d.unhealthy for d in deployments) or any(
        d.ever_ready and d.ready < d.desired and not d.starting for d in deployments
    ):
        return EndpointStatus.DEGRADED, reason
    return EndpointStatus.UPDATING, reason
