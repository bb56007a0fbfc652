"""The decision as a pure function: the seed's policy numbers, hysteresis, windows, zero."""

from __future__ import annotations

import dataclasses

from regolo.server.autoscaling.decide import (
    MetricWindow,
    Recommendation,
    ScalingContext,
    decide,
)
from regolo.server.autoscaling.policy import policy_from_dict

SEED = policy_from_dict(
    {
        "metrics": [
            {
                "metric": "cpu_usage",
                "target": 0.7,
                "scale_up_threshold": 0.8,
                "scale_down_threshold": 0.3,
            },
            {
                "metric": "request_rate",
                "target": 100,
                "scale_up_threshold": 150,
                "scale_down_threshold": 50,
            },
        ],
        "min_replicas": 2,
        "max_replicas": 50,
    }
)


def context(
    cpu: float = 0.5,
    rate: float = 100.0,
    *,
    current: int = 4,
    ready: int | None = None,
    **extra: object,
) -> ScalingContext:
    fields: dict[str, object] = {
        "policy": SEED,
        "now": 1000.0,
        "current_replicas": current,
        "ready_replicas": current if ready is None else ready,
        "metrics": {"cpu_usage": MetricWindow(cpu, cpu), "request_rate": MetricWindow(rate, rate)},
        # a full, quiet stabilization window behind us
        "history": (Recommendation(900.0, 1),),
    }
    fields.update(extra)
    return ScalingContext(**fields)  # type: ignore[arg-type]


def test_inside_the_thresholds_nothing_moves() -> None:
    # cpu 0.79 < 0.8 and 149 rpm < 150: the hysteresis band holds, though both are over target
    decision = decide(context(cpu=0.79, rate=149))
    assert decision.desired == 4
    assert decision.reason == "within thresholds"


def test_cpu_above_its_threshold_scales_by_the_ratio() -> None:
    # ceil(4 x 0.9 / 0.7) = ceil(5.14) = 6
    assert decide(context(cpu=0.9, rate=100)).desired == 6


def test_request_rate_above_its_threshold_scales_by_the_ratio() -> None:
    # ceil(4 x 160 / 100) = 7; cpu 0.5 holds at 4; the max wins
    decision = decide(context(cpu=0.5, rate=160))
    assert decision.desired == 7
    assert "request_rate" in decision.reason
    assert decision.inputs["proposals"] == {"cpu_usage": 4, "request_rate": 7}


def test_the_largest_metric_wins() -> None:
    # cpu: ceil(4 x 1.4 / 0.7) = 8; rate: ceil(4 x 160 / 100) = 7
    assert decide(context(cpu=1.4, rate=160)).desired == 8


def test_scale_down_needs_every_metric_below_its_threshold() -> None:
    assert decide(context(cpu=0.2, rate=60)).desired == 4  # rate 60 > 50 holds
    # cpu: ceil(4 x 0.2 / 0.7) = 2; rate: ceil(4 x 40 / 100) = 2
    assert decide(context(cpu=0.2, rate=40)).desired == 2


def test_min_and_max_bound_the_result() -> None:
    assert decide(context(cpu=0.0, rate=0.0)).desired == 2  # min_replicas
    big = decide(context(cpu=1.0, rate=5000.0, current=40, history=()))
    assert big.desired == 50
    assert "max_replicas" in big.reason


def test_scale_down_waits_for_the_stabilization_window() -> None:
    recent = (Recommendation(900.0, 4), Recommendation(980.0, 4))
    held = decide(context(cpu=0.2, rate=40, history=recent))
    assert held.desired == 4
    assert "stabilization" in held.reason
    not_yet_observed = decide(context(cpu=0.2, rate=40, history=(Recommendation(990.0, 2),)))
    assert not_yet_observed.desired == 4


def test_scale_up_step_is_limited_unless_it_is_a_burst() -> None:
    policy = dataclasses.replace(SEED, max_scale_up_step=2)
    # stable window says 160 rpm, the panic window agrees: a 1.6x ask, not a burst
    calm = decide(context(cpu=0.5, rate=160, policy=policy))
    assert calm.desired == 6 and "limited to +2" in calm.reason
    burst = ScalingContext(
        policy=policy,
        now=1000.0,
        current_replicas=4,
        ready_replicas=4,
        metrics={"request_rate": MetricWindow(120.0, 500.0), "cpu_usage": MetricWindow(0.5, 0.5)},
    )
    panic = decide(burst)
    assert panic.desired == 20  # ceil(4 x 500 / 100), no step limit in panic
    assert panic.panic_until == 1000.0 + SEED.stable_window_seconds


def test_no_scale_down_during_panic() -> None:
    decision = decide(context(cpu=0.1, rate=10, panic_until=1010.0))
    assert decision.desired == 4
    assert "panic" in decision.reason


def test_scale_down_waits_while_replicas_start() -> None:
    assert decide(context(cpu=0.1, rate=10, current=6, ready=3)).desired == 6


def test_idle_goes_to_zero_only_with_min_zero() -> None:
    zero = dataclasses.replace(SEED, min_replicas=0, idle_window_seconds=300)
    assert decide(context(0, 0, policy=zero, idle_seconds=301)).desired == 0
    assert decide(context(0, 0, policy=zero, idle_seconds=100)).desired == 1
    assert decide(context(0, 0, idle_seconds=10_000)).desired == 2


def test_first_waiting_request_scales_from_zero() -> None:
    zero = dataclasses.replace(SEED, min_replicas=0)
    woken = decide(context(0, 0, policy=zero, current=0, waiting_requests=1))
    assert woken.desired == 1
    assert "scale from zero" in woken.reason
    assert decide(context(0, 0, policy=zero, current=0)).desired == 0


def test_off_means_hold() -> None:
    off = dataclasses.replace(SEED, enabled=False)
    assert decide(context(cpu=1.0, rate=900, policy=off)).desired == 4
