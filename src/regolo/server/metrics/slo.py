"""SLOs: an endpoint's targets checked against a window, with the error budget left.

Each objective allows a budget of bad events: ``1 - availability target`` of events,
the error-rate target's share of requests, and 5 % of requests slower than the p95
latency target. ``error_budget_remaining`` is the share of that budget not yet spent
(1 = untouched, 0 = spent, below 0 = overspent).
"""

from __future__ import annotations

from dataclasses import dataclass

from regolo.server.metrics.percentiles import share_above
from regolo.server.metrics.stats import BucketStats
from regolo.server.metrics.summary import summarize

P95_ALLOWED_SLOW_SHARE = 0.05


@dataclass(frozen=True, kw_only=True)
class SloTargets:
    p95_latency_ms: float | None = None
    availability: float | None = None  # 0..1 (a value over 1 is read as a percentage)
    error_rate: float | None = None


@dataclass(frozen=True, kw_only=True)
class Objective:
    name: str  # "p95_latency_ms" | "availability" | "error_rate"
    target: float
    actual: float | None
    met: bool
    error_budget_remaining: float


def normalized_availability(target: float) -> float:
    return target / 100.0 if target > 1 else target


def evaluate(targets: SloTargets, stats: BucketStats) -> list[Objective]:
    summary = summarize(stats)
    objectives = []
    if targets.availability is not None:
        target = normalized_availability(targets.availability)
        objectives.append(
            _objective("availability", target, summary.availability, 1 - target,
                       1 - summary.availability, met=summary.availability >= target)
        )  # fmt: skip
    if targets.error_rate is not None:
        objectives.append(
            _objective("error_rate", targets.error_rate, summary.error_rate, targets.error_rate,
                       summary.error_rate, met=summary.error_rate <= targets.error_rate)
        )  # fmt: skip
    if targets.p95_latency_ms is not None:
        p95 = summary.p95_latency_ms
        slow = share_above(stats.latency_buckets, targets.p95_latency_ms)
        objectives.append(
            _objective("p95_latency_ms", targets.p95_latency_ms, p95, P95_ALLOWED_SLOW_SHARE,
                       slow, met=p95 is None or p95 <= targets.p95_latency_ms)
        )  # fmt: skip
    return objectives


def _objective(
    name: str, target: float, actual: float | None, budget: float, spent: float, *, met: bool
) -> Objective:
    if budget <= 0:
        remaining = 1.0 if spent <= 0 else 0.0
    else:
        remaining = 1.0 - spent / budget
    return Objective(
        name=name, target=target, actual=actual, met=met, error_budget_remaining=remaining
    )
