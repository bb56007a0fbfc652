"""Pure decisions: when to pause and resume; what a deployment costs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from regolo.server.billing.catalog import load_catalog
from regolo.server.billing.estimate import EstimateRequest, estimate
from regolo.server.billing.policy import CreditDecision, decide
from regolo.server.errors import NotFound, ValidationFailed

D = Decimal


def _decide(
    balance: str, due: str = "0", paused: bool = False, resume: str = "0"
) -> CreditDecision:
    return decide(
        balance=D(balance),
        due_soon=D(due),
        paused=paused,
        resume_cost=D(resume),
        low_balance_threshold=D("10"),
        enforce=True,
    )


def test_pause_when_the_next_hours_cannot_be_paid() -> None:
    assert not _decide("0.70", due="0.50").pause
    assert _decide("0.20", due="0.50").pause
    assert _decide("-0.01").pause
    assert not _decide("0", due="0").pause  # nothing running, nothing due


def test_resume_needs_an_hour_of_the_replicas() -> None:
    assert not _decide("0.70", paused=True, resume="1.00").resume
    assert _decide("1.00", paused=True, resume="1.00").resume
    assert not _decide("0", paused=True, resume="0").resume  # never resume into debt


def test_low_balance() -> None:
    assert _decide("10").low_balance and not _decide("10.01").low_balance


CATALOG = load_catalog()


def test_the_seed_examples() -> None:
    small = estimate(CATALOG, EstimateRequest(model="Llama-2-7B", instance_type="a100-40gb-x1"))
    assert (small["price_per_hour"], small["cost_per_month"]) == ("0.50", "360.00")
    large = estimate(CATALOG, EstimateRequest(model="Llama-2-70B", instance_type="a100-80gb-x2"))
    assert (large["cost_per_hour"], large["cost_per_month"]) == ("2.00", "1440.00")


def test_ranges_and_errors() -> None:
    ranged = estimate(
        CATALOG, EstimateRequest(instance_type="l4-24gb-x1", min_replicas=2, max_replicas=5)
    )
    assert (ranged["replicas"], ranged["cost_per_month_min"], ranged["cost_per_month_max"]) == (
        2,
        "432.00",
        "1080.00",
    )
    part = estimate(CATALOG, EstimateRequest(instance_type="cpu-small", hours_per_month=100))
    assert part["cost_per_month"] == "2.00"
    with pytest.raises(NotFound):
        estimate(CATALOG, EstimateRequest(instance_type="nope"))
    with pytest.raises(ValidationFailed):
        estimate(CATALOG, EstimateRequest())
    with pytest.raises(ValidationFailed):
        estimate(CATALOG, EstimateRequest(instance_type="cpu-small", replicas=3, max_replicas=2))
