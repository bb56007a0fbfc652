"""Fast in-memory signals for the autoscaler and the canary analysis.

``UsageTap`` listens to the gateway's usage records (one per finished request) and
keeps, per deployment, a bounded series of (time, latency, error). ``LoadSampler``
takes one sample per tick of what is happening now: requests in flight on each
deployment's replicas (the picker's counters), requests waiting at the endpoint, and
CPU use from the replica rows. ``SignalWindows`` turns both into the stable and panic
window averages the decision reads. Nothing here touches the database or blocks a
request; the tap's lock is held only to append or copy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from regolo.server.autoscaling.decide import MetricWindow
from regolo.server.autoscaling.policy import ScalingPolicy
from regolo.server.specs import UsageRecord

Clock = Callable[[], float]
MAX_RECORDS_PER_DEPLOYMENT = 50_000
MAX_SAMPLES_PER_DEPLOYMENT = 3_600
KEEP_SECONDS = 3_600.0  # longer than any averaging window or canary step we judge


@dataclass(frozen=True, slots=True)
class Completion:
    at: float
    latency_ms: float
    error: bool


def is_error(status_code: int, complete: bool) -> bool:
    """Server-side failures count; a client that went away (499) does not."""
    return status_code >= 500 or status_code == 0 or (not complete and status_code != 499)


class UsageTap:
    """Per-deployment completions, fed by ``UsageBuffer.listeners`` on the gateway's loop."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self._by_deployment: dict[str, deque[Completion]] = {}

    def __call__(self, usage: UsageRecord) -> None:
        if usage.deployment_id is None:
            return
        self.add(
            usage.deployment_id,
            Completion(self.clock(), usage.latency_ms, is_error(usage.status_code, usage.complete)),
        )

    def add(self, deployment_id: str, completion: Completion) -> None:
        with self._lock:
            series = self._by_deployment.get(deployment_id)
            if series is None:
                series = self._by_deployment[deployment_id] = deque(
                    maxlen=MAX_RECORDS_PER_DEPLOYMENT
                )
            series.append(completion)
            horizon = completion.at - KEEP_SECONDS
            while series[0].at < horizon:  # bounded in time as well as in count
                series.popleft()

    def since(self, deployment_id: str, start: float) -> list[Completion]:
        with self._lock:
            series = self._by_deployment.get(deployment_id)
            if not series:
                return []
            return [c for c in series if c.at > start]

    def last_at(self, deployment_id: str) -> float | None:
        with self._lock:
            series = self._by_deployment.get(deployment_id)
            return series[-1].at if series else None

    def forget_except(self, deployment_ids: Iterable[str]) -> None:
        keep = set(deployment_ids)
        with self._lock:
            for deployment_id in [d for d in self._by_deployment if d not in keep]:
                del self._by_deployment[deployment_id]


@dataclass(frozen=True, slots=True)
class LoadSample:
    at: float
    ready_replicas: int
    in_flight: int
    waiting: int
    cpu_usage: float  # mean over ready replicas of cores used / cores requested


class LoadSeries:
    """The load samples of every deployment, oldest first, bounded."""

    def __init__(self) -> None:
        self._by_deployment: dict[str, deque[LoadSample]] = {}

    def add(self, deployment_id: str, sample: LoadSample) -> None:
        series = self._by_deployment.get(deployment_id)
        if series is None:
            series = self._by_deployment[deployment_id] = deque(maxlen=MAX_SAMPLES_PER_DEPLOYMENT)
        series.append(sample)

    def window(self, deployment_id: str, start: float) -> list[LoadSample]:
        return [s for s in self._by_deployment.get(deployment_id, ()) if s.at > start]

    def forget_except(self, deployment_ids: Iterable[str]) -> None:
        keep = set(deployment_ids)
        for deployment_id in [d for d in self._by_deployment if d not in keep]:
            del self._by_deployment[deployment_id]


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(0.95 * len(ordered) + 0.5) - 1))]


def metric_windows(
    policy: ScalingPolicy,
    *,
    now: float,
    observed_since: float,
    ready_replicas: int,
    completions: list[Completion],
    samples: list[LoadSample],
) -> dict[str, MetricWindow]:
    """Every metric of the policy over its stable and panic windows (per-replica averages)."""
    out: dict[str, MetricWindow] = {}
    for metric in policy.metrics:
        pair = [
            _value(
                metric.metric,
                now=now,
                span=min(seconds, max(now - observed_since, 1.0)),
                replicas=max(ready_replicas, 1),
                completions=completions,
                samples=samples,
            )
            for seconds in (policy.stable_window_seconds, policy.panic_window_seconds)
        ]
        out[metric.metric] = MetricWindow(stable=pair[0], panic=pair[1])
    return out


def _value(
    metric: str,
    *,
    now: float,
    span: float,
    replicas: int,
    completions: list[Completion],
    samples: list[LoadSample],
) -> float:
    start = now - span
    if metric == "request_rate":  # requests per minute per replica
        count = sum(1 for c in completions if c.at > start)
        return count * 60.0 / span / replicas
    if metric == "latency_p95_ms":
        return p95([c.latency_ms for c in completions if c.at > start])
    inside = [s for s in samples if s.at > start] or samples[-1:]
    if not inside:
        return 0.0
    if metric == "cpu_usage":
        return sum(s.cpu_usage for s in inside) / len(inside)
    if metric == "concurrency":
        return sum(s.in_flight / max(s.ready_replicas, 1) for s in inside) / len(inside)
    return sum(s.waiting / max(s.ready_replicas, 1) for s in inside) / len(inside)


def share_waiting(waiting: int, weights: Mapping[str, float]) -> dict[str, int]:
    """An endpoint's waiting requests split over its deployments by traffic weight (ceil)."""
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0:
        return dict.fromkeys(weights, waiting)
    return {d: math.ceil(waiting * w / total) if w > 0 else 0 for d, w in weights.items()}


__all__ = [
    "Completion",
    "LoadSample",
    "LoadSeries",
    "UsageTap",
    "is_error",
    "metric_windows",
    "p95",
    "share_waiting",
]
