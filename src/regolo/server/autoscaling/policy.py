"""An endpoint's autoscaling policy: which metrics, their targets and thresholds, the bounds.

A metric's value is what one replica sees on average (``request_rate`` in requests per
minute, ``cpu_usage`` as a fraction of the requested CPU, ``concurrency`` in-flight
requests, ``queue_depth`` waiting requests), except ``latency_p95_ms`` which is the
deployment's 95th percentile. Thresholds give hysteresis: a metric asks for more
replicas only above ``scale_up_threshold`` and for fewer only below
``scale_down_threshold``; between them it holds. Without thresholds a 10 % band around
the target is used (Kubernetes' tolerance).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from regolo.server.errors import ValidationFailed

METRICS = ("cpu_usage", "request_rate", "concurrency", "queue_depth", "latency_p95_ms")
MAX_REPLICAS = 100
DEFAULT_TOLERANCE = 0.1


@dataclass(frozen=True, kw_only=True)
class MetricTarget:
    metric: str
    target: float
    scale_up_threshold: float | None = None
    scale_down_threshold: float | None = None

    @property
    def up_threshold(self) -> float:
        given = self.scale_up_threshold
        return given if given is not None else self.target * (1 + DEFAULT_TOLERANCE)

    @property
    def down_threshold(self) -> float:
        given = self.scale_down_threshold
        return given if given is not None else self.target * (1 - DEFAULT_TOLERANCE)


@dataclass(frozen=True, kw_only=True)
class ScalingPolicy:
    metrics: tuple[MetricTarget, ...]
    min_replicas: int = 1
    max_replicas: int = 10
    # Averages: the stable window for normal decisions, the panic window for bursts.
    stable_window_seconds: float = 60.0
    panic_window_seconds: float = 6.0
    # A burst asking for panic_threshold x the current replicas skips the step limit.
    panic_threshold: float = 2.0
    scale_up_stabilization_seconds: float = 0.0
    scale_down_stabilization_seconds: float = 60.0
    max_scale_up_step: int | None = None  # None: double, at least +4 (Kubernetes' default)
    max_scale_down_step: int | None = None  # None: no limit
    idle_window_seconds: float = 300.0  # with min_replicas 0: idle this long -> zero
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = [asdict(m) for m in self.metrics]
        return out


_WINDOWS = (
    "stable_window_seconds",
    "panic_window_seconds",
    "scale_up_stabilization_seconds",
    "scale_down_stabilization_seconds",
    "idle_window_seconds",
)


def policy_from_dict(data: dict[str, Any]) -> ScalingPolicy:
    """Build and validate a policy from its wire or stored form."""
    raw_metrics = data.get("metrics") or []
    if not isinstance(raw_metrics, list) or not raw_metrics:
        raise ValidationFailed("metrics must list at least one metric", param="metrics")
    metrics = tuple(_metric_from_dict(item, index) for index, item in enumerate(raw_metrics))
    known = {f for f in ScalingPolicy.__dataclass_fields__ if f != "metrics"}
    unknown = sorted(set(data) - known - {"metrics"})
    if unknown:
        raise ValidationFailed(f"unknown autoscaling field {unknown[0]!r}", param=unknown[0])
    options = {k: v for k, v in data.items() if k in known and v is not None}
    policy = ScalingPolicy(metrics=metrics, **options)
    validate_policy(policy)
    return policy


def _metric_from_dict(item: Any, index: int) -> MetricTarget:
    param = f"metrics[{index}]"
    if not isinstance(item, dict):
        raise ValidationFailed("each metric must be an object", param=param)
    allowed = {"metric", "target", "scale_up_threshold", "scale_down_threshold"}
    extra = sorted(set(item) - allowed)
    if extra:
        raise ValidationFailed(f"unknown metric field {extra[0]!r}", param=f"{param}.{extra[0]}")
    if "metric" not in item or "target" not in item:
        raise ValidationFailed("each metric needs 'metric' and 'target'", param=param)
    try:
        return MetricTarget(
            metric=str(item["metric"]),
            target=float(item["target"]),
            scale_up_threshold=_optional_float(item.get("scale_up_threshold")),
            scale_down_threshold=_optional_float(item.get("scale_down_threshold")),
        )
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("metric numbers must be numbers", param=param) from exc


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def validate_policy(policy: ScalingPolicy) -> None:
    if not 0 <= policy.min_replicas <= policy.max_replicas:
        raise ValidationFailed(
            "min_replicas must be >= 0 and <= max_replicas", param="min_replicas"
        )
    if not 1 <= policy.max_replicas <= MAX_REPLICAS:
        raise ValidationFailed(f"max_replicas must be in 1..{MAX_REPLICAS}", param="max_replicas")
    seen: set[str] = set()
    for index, metric in enumerate(policy.metrics):
        _validate_metric(metric, f"metrics[{index}]")
        if metric.metric in seen:
            raise ValidationFailed(f"metric {metric.metric!r} is listed twice", param="metrics")
        seen.add(metric.metric)
    for name in _WINDOWS:
        value = getattr(policy, name)
        if not (math.isfinite(value) and 0 <= value <= 86400):
            raise ValidationFailed(f"{name} must be between 0 and 86400", param=name)
    if policy.panic_window_seconds <= 0 or policy.stable_window_seconds <= 0:
        raise ValidationFailed("averaging windows must be > 0", param="panic_window_seconds")
    if policy.panic_window_seconds > policy.stable_window_seconds:
        raise ValidationFailed(
            "panic_window_seconds must be <= stable_window_seconds", param="panic_window_seconds"
        )
    if not policy.panic_threshold > 1:
        raise ValidationFailed("panic_threshold must be > 1", param="panic_threshold")
    for name in ("max_scale_up_step", "max_scale_down_step"):
        step = getattr(policy, name)
        if step is not None and step < 1:
            raise ValidationFailed(f"{name} must be >= 1", param=name)


def _validate_metric(metric: MetricTarget, param: str) -> None:
    if metric.metric not in METRICS:
        raise ValidationFailed(
            f"unknown metric {metric.metric!r}; use one of {', '.join(METRICS)}",
            param=f"{param}.metric",
        )
    numbers = (metric.target, metric.scale_up_threshold, metric.scale_down_threshold)
    if not all(n is None or (math.isfinite(n) and n >= 0) for n in numbers):
        raise ValidationFailed("targets and thresholds must be finite and >= 0", param=param)
    if metric.target <= 0:
        raise ValidationFailed("target must be > 0", param=f"{param}.target")
    if metric.metric == "cpu_usage" and metric.target > 1:
        raise ValidationFailed(
            "cpu_usage is a fraction of the requested CPU: target must be in (0, 1]",
            param=f"{param}.target",
        )
    if metric.up_threshold < metric.target:
        raise ValidationFailed(
            "scale_up_threshold must be >= target", param=f"{param}.scale_up_threshold"
        )
    if metric.down_threshold > metric.target:
        raise ValidationFailed(
            "scale_down_threshold must be <= target", param=f"{param}.scale_down_threshold"
        )


def implicit_policy(
    min_replicas: int | None, max_replicas: int | None, target_utilization: float | None
) -> ScalingPolicy | None:
    """The policy an endpoint created with ``min_replicas``/``max_replicas`` gets by default.

    ``target_utilization`` is the CPU fraction to hold (0.7 when not given), as the seed's
    ``create_endpoint(..., min_replicas=2, max_replicas=20, target_utilization=0.7)``.
    """
    if min_replicas is None or max_replicas is None or min_replicas >= max_replicas:
        return None
    target = target_utilization or 0.7
    return ScalingPolicy(
        metrics=(MetricTarget(metric="cpu_usage", target=target),),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    )


__all__ = [
    "METRICS",
    "MetricTarget",
    "ScalingPolicy",
    "implicit_policy",
    "policy_from_dict",
    "validate_policy",
]
