"""The autoscaling decision: a pure function from a deployment's metric windows to a replica count.

Per metric: desired = ceil(replicas x value / target), acted on only past that metric's
thresholds (hysteresis); the deployment takes the largest. Decisions read the stable
window; when the short panic window shows a burst (``panic_threshold`` x the target,
as in Knative) it is read too, the step limit is lifted, and nothing scales down
until the burst has been gone for a stable window. Scaling down reads the larger of
the two windows and then waits out the stabilization window (the highest
recommendation of the window wins, as in Kubernetes). With
``min_replicas == 0`` an idle deployment goes to zero, and the first waiting request
brings one replica back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regolo.server.autoscaling.policy import MetricTarget, ScalingPolicy

_EPSILON = 1e-9


@dataclass(frozen=True)
class MetricWindow:
    """A metric averaged over the stable and the panic window."""

    stable: float
    panic: float


@dataclass(frozen=True)
class Recommendation:
    at: float
    replicas: int


@dataclass(frozen=True, kw_only=True)
class ScalingContext:
    policy: ScalingPolicy
    now: float  # seconds on the caller's clock
    current_replicas: int  # the desired count in force
    ready_replicas: int
    metrics: Mapping[str, MetricWindow]
    waiting_requests: int = 0
    idle_seconds: float = 0.0  # since the last request arrived or finished
    history: tuple[Recommendation, ...] = ()  # this deployment's earlier recommendations
    panic_until: float | None = None
    # How long this deployment has been watched: a window is read only once it is full.
    observed_seconds: float = math.inf


@dataclass(frozen=True, kw_only=True)
class Decision:
    desired: int
    reason: str
    recommendation: int  # before stabilization, step limits and bounds; kept in the history
    panic_until: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Proposal:
    metric: str
    replicas: int
    value: float
    panic: bool  # the panic window asked for a burst


def decide(context: ScalingContext) -> Decision:
    policy, current = context.policy, context.current_replicas
    inputs = _inputs(context)
    if not policy.enabled:
        return Decision(desired=current, reason="autoscaling is off", recommendation=current)
    if current == 0:
        return _from_zero(context, inputs)
    proposals = [_propose(context, metric) for metric in policy.metrics]
    inputs["proposals"] = {p.metric: p.replicas for p in proposals}
    winner = max(proposals, key=lambda p: p.replicas)
    raw = winner.replicas
    panic_until = _panic_until(context, proposals)
    panicking = panic_until is not None and panic_until > context.now
    inputs["panic"] = panicking
    if _idle(context):
        reason = f"idle for {context.idle_seconds:.0f} s with min_replicas 0: scale to zero"
        return Decision(desired=0, reason=reason, recommendation=0, inputs=inputs)
    desired, reason = _stabilize(context, raw, winner, panicking)
    desired, reason = _limit_steps(context, desired, reason, panicking)
    desired, reason = _bound(policy, desired, reason)
    return Decision(
        desired=desired,
        reason=reason,
        recommendation=raw,
        panic_until=panic_until,
        inputs=inputs,
    )


def _propose(context: ScalingContext, metric: MetricTarget) -> _Proposal:
    current = context.current_replicas
    window = context.metrics.get(metric.metric, MetricWindow(0.0, 0.0))
    base = context.ready_replicas or current
    policy, observed = context.policy, context.observed_seconds
    # The short window counts only for a burst: on its own it is too noisy to follow.
    burst = window.panic >= policy.panic_threshold * metric.target
    if not burst and observed < policy.stable_window_seconds:
        return _Proposal(metric.metric, current, window.stable, False)
    up_value = max(window.stable, window.panic) if burst else window.stable
    if up_value > metric.up_threshold:
        wanted = _ceil(base * up_value / metric.target)
        return _Proposal(metric.metric, max(current, wanted), up_value, burst)
    # Down reads the larger window value, and only with every replica up: starting
    # replicas would skew the ratio.
    down_value = max(window.stable, window.panic)
    if down_value < metric.down_threshold and context.ready_replicas >= current:
        wanted = _ceil(base * down_value / metric.target)
        return _Proposal(metric.metric, min(current, wanted), down_value, False)
    return _Proposal(metric.metric, current, up_value, False)


def _ceil(number: float) -> int:
    return max(0, math.ceil(number - _EPSILON))


def _from_zero(context: ScalingContext, inputs: dict[str, Any]) -> Decision:
    policy = context.policy
    if context.waiting_requests > 0:
        desired = max(1, policy.min_replicas)
        reason = f"scale from zero: {context.waiting_requests} request(s) waiting"
    elif policy.min_replicas > 0:
        desired, reason = policy.min_replicas, "below min_replicas"
    else:
        desired, reason = 0, "idle at zero replicas"
    return Decision(desired=desired, reason=reason, recommendation=desired, inputs=inputs)


def _panic_until(context: ScalingContext, proposals: list[_Proposal]) -> float | None:
    if any(p.panic for p in proposals):
        return context.now + context.policy.stable_window_seconds
    return context.panic_until


def _idle(context: ScalingContext) -> bool:
    policy = context.policy
    return (
        policy.min_replicas == 0
        and context.waiting_requests == 0
        and context.idle_seconds >= policy.idle_window_seconds
    )


def _stabilize(
    context: ScalingContext, raw: int, winner: _Proposal, panicking: bool
) -> tuple[int, str]:
    policy, current, now = context.policy, context.current_replicas, context.now
    if raw > current:
        window = [
            r.replicas
            for r in context.history
            if r.at > now - policy.scale_up_stabilization_seconds
        ]
        desired = max(current, min([raw, *window]))
        reason = f"{winner.metric} {winner.value:.4g} above its scale-up threshold"
        if desired == current:
            return current, f"{reason}; scale-up held by the stabilization window"
        return desired, reason + (" (panic: burst)" if panicking else "")
    if raw == current:
        return current, "within thresholds"
    if panicking:
        return current, "scale-down held: panic mode after a burst"
    window_start = now - policy.scale_down_stabilization_seconds
    if not context.history or context.history[0].at > window_start:
        return current, "scale-down held: stabilization window not yet observed"
    highest = max([raw, *(r.replicas for r in context.history if r.at > window_start)])
    if highest >= current:
        return current, (
            f"scale-down held by the {policy.scale_down_stabilization_seconds:.0f} s"
            f" stabilization window (highest recommendation {highest})"
        )
    return highest, "every metric below its scale-down threshold for the stabilization window"


def _limit_steps(
    context: ScalingContext, desired: int, reason: str, panicking: bool
) -> tuple[int, str]:
    policy, current = context.policy, context.current_replicas
    if desired > current and not panicking:
        step = policy.max_scale_up_step or max(4, current)
        if desired > current + step:
            return current + step, f"{reason}; limited to +{step} per decision"
    if desired < current and policy.max_scale_down_step is not None:
        step = policy.max_scale_down_step
        if desired < current - step:
            return current - step, f"{reason}; limited to -{step} per decision"
    return desired, reason


def _bound(policy: ScalingPolicy, desired: int, reason: str) -> tuple[int, str]:
    floor = max(1, policy.min_replicas)  # zero only through the idle rule
    if desired < floor:
        return floor, f"{reason}; raised to the minimum {floor}"
    if desired > policy.max_replicas:
        return policy.max_replicas, f"{reason}; capped at max_replicas {policy.max_replicas}"
    return desired, reason


def _inputs(context: ScalingContext) -> dict[str, Any]:
    return {
        "current_replicas": context.current_replicas,
        "ready_replicas": context.ready_replicas,
        "waiting_requests": context.waiting_requests,
        "idle_seconds": round(context.idle_seconds, 3),
        "observed_seconds": round(min(context.observed_seconds, 1e9), 3),
        "metrics": {
            name: {"stable": round(w.stable, 4), "panic": round(w.panic, 4)}
            for name, w in context.metrics.items()
        },
    }


def trim_history(
    history: tuple[Recommendation, ...], policy: ScalingPolicy, now: float
) -> tuple[Recommendation, ...]:
    """The recommendations the next decision still needs (one older entry marks the span)."""
    keep = max(policy.scale_down_stabilization_seconds, policy.scale_up_stabilization_seconds)
    inside = [r for r in history if r.at > now - keep]
    older = [r for r in history if r.at <= now - keep]
    return tuple(older[-1:] + inside)


__all__ = ["Decision", "MetricWindow", "Recommendation", "ScalingContext", "decide", "trim_history"]
