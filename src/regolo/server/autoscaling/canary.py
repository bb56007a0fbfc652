"""Automated canary analysis: step the new version's traffic up while it behaves, else roll back.

``judge`` is pure: the canary's and the stable version's numbers since the step began
-> hold, advance, promote or roll back, with the reason. ``CanaryAnalyzer`` reads the
running canary runs, takes the numbers from the gateway's usage tap (in memory, per
deployment) and carries the verdict out through the endpoint service, so the same
desired-state rules as a manual canary apply.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select

from regolo.server.autoscaling.signals import Completion, UsageTap, p95
from regolo.server.autoscaling.tables import AutoscalingEvent, CanaryRun
from regolo.server.endpoints import service
from regolo.server.errors import ValidationFailed
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Endpoint, Replica

ROLLBACK_METRICS = ("error_rate", "p95_latency_ms")
START_FAILURES_TO_ROLL_BACK = 2
Action = Literal["hold", "advance", "promote", "rollback"]


@dataclass(frozen=True)
class VersionStats:
    requests: int = 0
    errors: int = 0
    p95_latency_ms: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def stats_of(completions: list[Completion]) -> VersionStats:
    return VersionStats(
        requests=len(completions),
        errors=sum(1 for c in completions if c.error),
        p95_latency_ms=p95([c.latency_ms for c in completions if not c.error]),
    )


@dataclass(frozen=True, kw_only=True)
class CanaryStep:
    steps: tuple[float, ...]
    step_index: int
    step_interval_seconds: float
    step_elapsed_seconds: float
    rollback_on: Mapping[str, float]
    min_requests: int
    canary_ready: bool


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def judge(step: CanaryStep, canary: VersionStats, stable: VersionStats) -> Verdict:
    broken = _out_of_bounds(step, canary, stable)
    if broken is not None:
        return Verdict("rollback", broken)
    if not step.canary_ready:  # it served before (the caller waits for the first replica)
        return Verdict("rollback", "the canary has no ready replica: it turned unhealthy")
    percent = step.steps[step.step_index]
    if step.step_elapsed_seconds < step.step_interval_seconds:
        return Verdict("hold", f"step {step.step_index + 1}: {percent:g}% of traffic")
    if canary.requests < step.min_requests:
        return Verdict(
            "hold", f"waiting for {step.min_requests} canary requests ({canary.requests} so far)"
        )
    if step.step_index + 2 >= len(step.steps):  # the next step is 100%: a promotion
        return Verdict("promote", f"the canary stayed within bounds up to {percent:g}%")
    return Verdict("advance", f"within bounds at {percent:g}% for the whole step")


def _out_of_bounds(step: CanaryStep, canary: VersionStats, stable: VersionStats) -> str | None:
    """Why the canary must go: worse than its bound and than the stable version."""
    error_bound = step.rollback_on.get("error_rate")
    # Enough errors that the bound is broken even if min_requests were all that came.
    decisive = canary.errors > (error_bound or 0.0) * step.min_requests
    sampled = canary.requests >= step.min_requests or decisive
    if (
        error_bound is not None
        and sampled
        and canary.error_rate > error_bound
        and canary.error_rate > stable.error_rate
    ):
        return (
            f"error_rate {canary.error_rate:.3f} > {error_bound:g}"
            f" (stable {stable.error_rate:.3f}, {canary.requests} requests)"
        )
    latency_bound = step.rollback_on.get("p95_latency_ms")
    if (
        latency_bound is not None
        and canary.requests >= step.min_requests
        and canary.p95_latency_ms > latency_bound
        and canary.p95_latency_ms > stable.p95_latency_ms
    ):
        return (
            f"p95_latency_ms {canary.p95_latency_ms:.0f} > {latency_bound:g}"
            f" (stable {stable.p95_latency_ms:.0f})"
        )
    return None


def validate_plan(
    steps: list[float], step_interval_seconds: float, rollback_on: Mapping[str, Any]
) -> tuple[tuple[float, ...], dict[str, float]]:
    """Checked steps (increasing, ending at 100) and bounds."""
    if not steps:
        raise ValidationFailed("steps must list traffic percentages", param="steps")
    if any(not math.isfinite(s) or not 0 < s <= 100 for s in steps):
        raise ValidationFailed("each step must be in (0, 100]", param="steps")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValidationFailed("steps must increase", param="steps")
    if steps[0] >= 100:
        raise ValidationFailed("the first step must be below 100", param="steps")
    if steps[-1] != 100:
        steps = [*steps, 100.0]
    if not (math.isfinite(step_interval_seconds) and 1 <= step_interval_seconds <= 86400):
        raise ValidationFailed(
            "step_interval_seconds must be in [1, 86400]", param="step_interval_seconds"
        )
    bounds: dict[str, float] = {}
    for name, value in rollback_on.items():
        if name not in ROLLBACK_METRICS:
            raise ValidationFailed(
                f"rollback_on takes {', '.join(ROLLBACK_METRICS)}", param=f"rollback_on.{name}"
            )
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValidationFailed("bounds must be numbers >= 0", param=f"rollback_on.{name}")
        bounds[name] = float(value)
    if "error_rate" in bounds and bounds["error_rate"] > 1:
        raise ValidationFailed("error_rate is a fraction in [0, 1]", param="rollback_on.error_rate")
    return tuple(float(s) for s in steps), bounds


class CanaryAnalyzer:
    """Judges every running canary once per tick and carries out the verdict."""

    def __init__(self, db: Database, tap: UsageTap) -> None:
        self.db = db
        self.tap = tap

    def tick(self) -> bool:
        with self.db.read() as session:
            runs = session.scalars(select(CanaryRun).where(CanaryRun.state == "running")).all()
        changed = False
        for run in runs:
            changed |= self._advance(run.id)
        return changed

    def _advance(self, run_id: str) -> bool:
        with self.db.write() as session:
            run = session.get(CanaryRun, run_id)
            endpoint = session.get(Endpoint, run.endpoint_id) if run else None
            if run is None or run.state != "running":
                return False
            if endpoint is None or endpoint.deleted_at is not None:
                _finish(run, "cancelled", "the endpoint was deleted")
                return False
            verdict = self._verdict(session, run, endpoint)
            if verdict.action == "hold":
                return False
            _act(session, run, endpoint, verdict)
            session.add(_event(run, verdict))
            return True

    def _verdict(self, session: Any, run: CanaryRun, endpoint: Endpoint) -> Verdict:
        deployments = service.active_deployments(session, endpoint)
        canary = next((d for d in deployments if d.id == run.deployment_id), None)
        stable = next((d for d in deployments if d.version == run.stable_version), None)
        if canary is None:
            return Verdict("rollback", "the canary deployment is gone")
        if not canary.ever_ready:  # the first step is timed from the canary's first replica
            if canary.failed_starts >= START_FAILURES_TO_ROLL_BACK:
                return Verdict("rollback", f"the canary failed to start: {canary.last_error}")
            run.step_started_at = datetime.fromtimestamp(self.tap.clock(), UTC)
            return Verdict("hold", "waiting for the canary's first replica")
        start = run.step_started_at.timestamp()
        ready = session.scalar(
            select(Replica.id).where(
                Replica.deployment_id == canary.id,
                Replica.state == "ready",
                Replica.stopped_at.is_(None),
            )
        )
        step = CanaryStep(
            steps=tuple(run.steps),
            step_index=run.step_index,
            step_interval_seconds=run.step_interval_seconds,
            step_elapsed_seconds=self.tap.clock() - start,
            rollback_on=run.rollback_on,
            min_requests=run.min_requests,
            canary_ready=ready is not None,
        )
        stable_stats = stats_of(self.tap.since(stable.id, start)) if stable else VersionStats()
        return judge(step, stats_of(self.tap.since(canary.id, start)), stable_stats)


def _act(session: Any, run: CanaryRun, endpoint: Endpoint, verdict: Verdict) -> None:
    if verdict.action == "rollback":
        service.rollback(session, endpoint, run.stable_version)
        _finish(run, "rolled_back", verdict.reason)
    elif verdict.action == "promote":
        service.promote(session, endpoint)
        _finish(run, "promoted", verdict.reason)
    else:
        run.step_index += 1
        share = run.steps[run.step_index]
        service.set_traffic(
            session, endpoint, {run.stable_version: 100 - share, run.new_version: share}
        )
        run.step_started_at = datetime.now(UTC)
        run.reason = verdict.reason


def _finish(run: CanaryRun, state: str, reason: str) -> None:
    run.state = state
    run.reason = reason
    run.finished_at = datetime.now(UTC)


def _event(run: CanaryRun, verdict: Verdict) -> AutoscalingEvent:
    return AutoscalingEvent(
        id=new_id("ase"),
        endpoint_id=run.endpoint_id,
        deployment_id=run.deployment_id,
        version=run.new_version,
        kind="canary",
        reason=f"canary {verdict.action}: {verdict.reason}",
        inputs={"run_id": run.id, "step_index": run.step_index, "steps": run.steps},
    )


__all__ = ["CanaryAnalyzer", "CanaryStep", "Verdict", "VersionStats", "judge", "validate_plan"]
