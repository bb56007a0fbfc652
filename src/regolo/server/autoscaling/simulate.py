"""Replaying a load trace in simulated time, through ``decide`` or the Kubernetes HPA formula.

Used by the unit tests and ``benchmarks/autoscaler.py``. One deployment, one metric
(``request_rate``, requests/min per replica); replicas become ready ``startup_seconds``
after they are asked for and leave at once when scaled down.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from regolo.server.autoscaling.decide import (
    MetricWindow,
    Recommendation,
    ScalingContext,
    decide,
    trim_history,
)
from regolo.server.autoscaling.policy import ScalingPolicy

Trace = Callable[[float], float]  # total requests/min at second t


@dataclass
class Run:
    changes: list[tuple[float, int, int]] = field(default_factory=list)  # (t, before, after)
    replicas: list[int] = field(default_factory=list)  # desired count at each second
    ready: list[int] = field(default_factory=list)

    def first_change_after(self, t: float) -> float | None:
        return next((at - t for at, _, _ in self.changes if at >= t), None)

    def capacity_after(self, t: float, needed: int) -> float | None:
        return next((s - t for s, n in enumerate(self.ready) if s >= t and n >= needed), None)

    def direction_changes(self, start: float = 0.0, end: float = math.inf) -> int:
        signs = [
            1 if after > before else -1 for at, before, after in self.changes if start <= at < end
        ]
        return sum(1 for a, b in itertools.pairwise(signs) if a != b)


@dataclass
class _Replicas:
    startup_seconds: float
    ready_at: list[float] = field(default_factory=list)

    def resize(self, desired: int, now: float) -> None:
        if desired > len(self.ready_at):
            self.ready_at += [now + self.startup_seconds] * (desired - len(self.ready_at))
        else:
            self.ready_at.sort()
            del self.ready_at[desired:]

    def ready(self, now: float) -> int:
        return sum(1 for at in self.ready_at if at <= now)


def simulate_regolo(
    trace: Trace,
    policy: ScalingPolicy,
    *,
    seconds: int,
    initial: int,
    startup_seconds: float = 5.0,
    tick_seconds: float = 1.0,
) -> Run:
    run, fleet = Run(), _Replicas(startup_seconds, [0.0] * initial)
    rates: deque[tuple[float, float]] = deque()
    history: tuple[Recommendation, ...] = ()
    panic_until: float | None = None
    last_busy, t = 0.0, 0.0
    while t < seconds:
        rates.append((t, trace(t)))
        last_busy = t if trace(t) > 0 else last_busy
        ready = fleet.ready(t)
        current = len(fleet.ready_at)
        if t % tick_seconds == 0:
            window = _windows(rates, policy, t, max(ready, 1))
            decision = decide(
                ScalingContext(
                    policy=policy,
                    now=t,
                    current_replicas=current,
                    ready_replicas=ready,
                    metrics={"request_rate": window},
                    waiting_requests=1 if trace(t) > 0 and ready == 0 else 0,
                    idle_seconds=t - last_busy,
                    history=history,
                    panic_until=panic_until,
                    observed_seconds=t + 1.0,
                )
            )
            history = trim_history(
                (*history, Recommendation(t, decision.recommendation)), policy, t
            )
            panic_until = decision.panic_until
            if decision.desired != current:
                run.changes.append((t, current, decision.desired))
                fleet.resize(decision.desired, t)
        run.replicas.append(len(fleet.ready_at))
        run.ready.append(fleet.ready(t))
        t += 1.0
    return run


def _windows(
    rates: deque[tuple[float, float]], policy: ScalingPolicy, now: float, ready: int
) -> MetricWindow:
    while rates and rates[0][0] <= now - policy.stable_window_seconds:
        rates.popleft()
    stable = [r for _, r in rates]
    panic = [r for at, r in rates if at > now - policy.panic_window_seconds]
    return MetricWindow(sum(stable) / len(stable) / ready, sum(panic) / len(panic) / ready)


@dataclass(frozen=True, kw_only=True)
class HpaSettings:
    """Kubernetes' defaults: 15 s sync, 10 % tolerance, 300 s scale-down stabilization."""

    target: float
    min_replicas: int
    max_replicas: int
    sync_seconds: float = 15.0
    tolerance: float = 0.1
    scale_down_stabilization_seconds: float = 300.0


def simulate_hpa(
    trace: Trace, hpa: HpaSettings, *, seconds: int, initial: int, startup_seconds: float = 5.0
) -> Run:
    run, fleet = Run(), _Replicas(startup_seconds, [0.0] * initial)
    recent: deque[float] = deque()
    recommendations: list[tuple[float, int]] = []
    for second in range(seconds):
        t = float(second)
        recent.append(trace(t))
        if len(recent) > hpa.sync_seconds:
            recent.popleft()  # metrics-server resolution: the last sync period's average
        current, ready = len(fleet.ready_at), fleet.ready(t)
        if second % int(hpa.sync_seconds) == 0 and second > 0:
            desired = _hpa_desired(hpa, sum(recent) / len(recent), current, ready)
            recommendations = [
                (at, n)
                for at, n in recommendations
                if at > t - hpa.scale_down_stabilization_seconds
            ]
            recommendations.append((t, desired))
            if desired < current:
                desired = min(current, max(n for _, n in recommendations))
            desired = min(desired, max(2 * current, current + 4))  # default scale-up policy
            desired = max(hpa.min_replicas, min(hpa.max_replicas, desired))
            if desired != current:
                run.changes.append((t, current, desired))
                fleet.resize(desired, t)
        run.replicas.append(len(fleet.ready_at))
        run.ready.append(fleet.ready(t))
    return run


def _hpa_desired(hpa: HpaSettings, total_rate: float, current: int, ready: int) -> int:
    per_replica = total_rate / max(ready, 1)
    ratio = per_replica / hpa.target
    if abs(ratio - 1.0) <= hpa.tolerance:
        return current
    return max(1, math.ceil(max(ready, 1) * ratio - 1e-9))


__all__ = ["HpaSettings", "Run", "simulate_hpa", "simulate_regolo"]
