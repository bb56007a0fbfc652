"""The canary verdict as a pure function, and the plan's validation."""

from __future__ import annotations

import dataclasses

import pytest

from regolo.server.autoscaling.canary import CanaryStep, VersionStats, judge, validate_plan
from regolo.server.errors import ValidationFailed

STEP = CanaryStep(
    steps=(5.0, 25.0, 50.0, 100.0),
    step_index=0,
    step_interval_seconds=60.0,
    step_elapsed_seconds=10.0,
    rollback_on={"error_rate": 0.05, "p95_latency_ms": 800.0},
    min_requests=20,
    canary_ready=True,
)
HEALTHY = VersionStats(requests=200, errors=1, p95_latency_ms=300.0)


def test_holds_during_a_step() -> None:
    verdict = judge(STEP, VersionStats(30, 0, 250.0), HEALTHY)
    assert verdict.action == "hold" and "5%" in verdict.reason


def test_advances_after_a_clean_step_and_promotes_before_the_last() -> None:
    done = dataclasses.replace(STEP, step_elapsed_seconds=61.0)
    assert judge(done, VersionStats(30, 0, 250.0), HEALTHY).action == "advance"
    at_half = dataclasses.replace(done, step_index=2)
    assert judge(at_half, VersionStats(30, 0, 250.0), HEALTHY).action == "promote"


def test_too_few_requests_hold_the_step() -> None:
    done = dataclasses.replace(STEP, step_elapsed_seconds=61.0)
    verdict = judge(done, VersionStats(5, 0, 250.0), HEALTHY)
    assert verdict.action == "hold" and "20 canary requests" in verdict.reason


def test_error_rate_over_the_bound_and_the_stable_rolls_back() -> None:
    verdict = judge(STEP, VersionStats(40, 4, 250.0), HEALTHY)  # 10% > 5% and > 0.5%
    assert verdict.action == "rollback" and "error_rate" in verdict.reason


def test_a_few_decisive_errors_roll_back_before_min_requests() -> None:
    # 2 errors: more than 5% of the 20 requests the step would need even if all came back fine
    assert judge(STEP, VersionStats(3, 2, 0.0), HEALTHY).action == "rollback"
    assert judge(STEP, VersionStats(3, 1, 0.0), HEALTHY).action == "hold"


def test_not_worse_than_stable_is_not_the_canarys_fault() -> None:
    sick_stable = VersionStats(200, 40, 300.0)  # 20% errors on the stable version too
    assert judge(STEP, VersionStats(40, 4, 250.0), sick_stable).action == "hold"


def test_p95_latency_over_the_bound_rolls_back() -> None:
    verdict = judge(STEP, VersionStats(40, 0, 1200.0), HEALTHY)
    assert verdict.action == "rollback" and "p95_latency_ms" in verdict.reason


def test_a_canary_that_lost_its_replicas_rolls_back() -> None:
    lost = dataclasses.replace(STEP, canary_ready=False)
    assert judge(lost, VersionStats(), HEALTHY).action == "rollback"


def test_plan_validation() -> None:
    steps, bounds = validate_plan([5, 25, 50], 30, {"error_rate": 0.05})
    assert steps == (5.0, 25.0, 50.0, 100.0) and bounds == {"error_rate": 0.05}
    for bad in ([50, 25], [0, 10], [100], [5, 150]):
        with pytest.raises(ValidationFailed):
            validate_plan(bad, 30, {})
    with pytest.raises(ValidationFailed):
        validate_plan([5], 0.1, {})
    with pytest.raises(ValidationFailed):
        validate_plan([5], 30, {"cpu": 1})
    with pytest.raises(ValidationFailed):
        validate_plan([5], 30, {"error_rate": 2})
