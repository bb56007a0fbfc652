"""Traffic weights: validation and the pure rules for canary, split, promote and rollback."""

from __future__ import annotations

import math
from collections.abc import Mapping

from regolo.server.errors import ValidationFailed

TOLERANCE = 1e-6


def normalise_weights(version_traffic: Mapping[str, float]) -> dict[str, float]:
    """Weights summing to 1 or to 100, returned as fractions summing to 1."""
    if not version_traffic:
        raise ValidationFailed("version_traffic is empty", param="version_traffic")
    for version, weight in version_traffic.items():
        if not math.isfinite(weight) or weight < 0:
            raise ValidationFailed(
                f"weight of version {version!r} must be a number >= 0", param="version_traffic"
            )
    total = sum(version_traffic.values())
    if abs(total - 1) <= TOLERANCE:
        scale = 1.0
    elif abs(total - 100) <= TOLERANCE * 100:
        scale = 100.0
    else:
        raise ValidationFailed(
            f"weights must sum to 1 (or 100), not {total:g}", param="version_traffic"
        )
    return {version: weight / scale for version, weight in version_traffic.items()}


def canary_weights(stable: str, canary: str, traffic_percentage: float) -> dict[str, float]:
    if not 0 < traffic_percentage <= 100:
        raise ValidationFailed("traffic_percentage must be in (0, 100]", param="traffic_percentage")
    share = traffic_percentage / 100
    return {stable: 1 - share, canary: share}


def fully_rolled_out(weights: Mapping[str, float]) -> str | None:
    """The version that takes all traffic, if one does."""
    for version, weight in weights.items():
        if abs(weight - 1) <= TOLERANCE:
            return version
    return None


def next_stable(
    stable: str | None, previous: str | None, weights: Mapping[str, float]
) -> tuple[str | None, str | None]:
    """(stable, previous stable) after a traffic change."""
    full = fully_rolled_out(weights)
    if full is None or full == stable:
        return stable, previous
    return full, stable


def rollback_target(
    stable: str | None, previous: str | None, weights: Mapping[str, float], to_version: str | None
) -> str:
    """Where a rollback sends all traffic: the named version, else the last fully rolled-out one.

    If the stable version already takes all traffic (a finished blue-green switch),
    rolling back returns to the version before it.
    """
    if to_version is not None:
        return to_version
    if stable is not None and fully_rolled_out(weights) != stable:
        return stable
    if previous is not None:
        return previous
    raise ValidationFailed("there is no earlier version to roll back to", param="to_version")


def routable_weights(
    weights: Mapping[str, float], ready: Mapping[str, int], stable: str | None
) -> dict[str, float]:
    """The weights the gateway uses: traffic never goes to a version with no ready replica.

    Versions without a ready replica lose their share to the others; if no weighted
    version is ready (a blue-green switch to a green that is still starting), traffic
    stays on whatever is ready, the stable version first.
    """
    serving = {v: w for v, w in weights.items() if ready.get(v, 0) > 0 and w > 0}
    total = sum(serving.values())
    if total > 0:
        return {v: w / total for v, w in serving.items()}
    if stable is not None and ready.get(stable, 0) > 0:
        return {stable: 1.0}
    ready_versions = [v for v in weights if ready.get(v, 0) > 0]
    return {v: 1 / len(ready_versions) for v in ready_versions}
