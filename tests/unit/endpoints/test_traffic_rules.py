"""The pure traffic rules: weight validation, canary shares, stable tracking, rollback, routing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regolo.server.endpoints import traffic
from regolo.server.errors import ValidationFailed


@pytest.mark.parametrize(
    ("given_weights", "expected"),
    [
        ({"1.0": 0.5, "1.1": 0.5}, {"1.0": 0.5, "1.1": 0.5}),
        ({"1.0": 50, "1.1": 50}, {"1.0": 0.5, "1.1": 0.5}),
        ({"1.0": 0, "1.1": 1.0}, {"1.0": 0.0, "1.1": 1.0}),
        ({"1.0": 95, "1.1": 5}, {"1.0": 0.95, "1.1": 0.05}),
        ({"1.0": 1}, {"1.0": 1.0}),
    ],
)
def test_weights_summing_to_1_or_100_become_fractions(
    given_weights: dict[str, float], expected: dict[str, float]
) -> None:
    assert traffic.normalise_weights(given_weights) == pytest.approx(expected)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"1.0": 0.5},
        {"1.0": 0.6, "1.1": 0.6},
        {"1.0": 60, "1.1": 60},
        {"1.0": -1, "1.1": 2},
        {"1.0": float("nan"), "1.1": 1},
        {"1.0": float("inf")},
    ],
)
def test_other_weights_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        traffic.normalise_weights(bad)
    assert raised.value.param == "version_traffic"


@given(st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=6))
def test_percentages_that_sum_to_100_always_normalise_to_1(parts: list[int]) -> None:
    parts[-1] += 100 - sum(parts) if sum(parts) <= 100 else 0
    weights = {f"v{i}": float(p) for i, p in enumerate(parts)}
    if abs(sum(weights.values()) - 100) > 1e-9 or any(p < 0 for p in parts):
        return
    assert sum(traffic.normalise_weights(weights).values()) == pytest.approx(1.0)


def test_canary_weights() -> None:
    assert traffic.canary_weights("1.0", "1.1", 5) == pytest.approx({"1.0": 0.95, "1.1": 0.05})
    assert traffic.canary_weights("1.0", "1.1", 100) == pytest.approx({"1.0": 0.0, "1.1": 1.0})
    for bad in (0, -1, 100.5):
        with pytest.raises(ValidationFailed):
            traffic.canary_weights("1.0", "1.1", bad)


def test_stable_moves_only_when_one_version_takes_all_traffic() -> None:
    assert traffic.next_stable("1.0", None, {"1.0": 0.5, "1.1": 0.5}) == ("1.0", None)
    assert traffic.next_stable("1.0", None, {"1.0": 0.0, "1.1": 1.0}) == ("1.1", "1.0")
    assert traffic.next_stable("1.1", "1.0", {"1.1": 1.0}) == ("1.1", "1.0")


def test_rollback_target() -> None:
    # during a canary or a split: back to the stable version
    assert traffic.rollback_target("1.0", None, {"1.0": 0.95, "1.1": 0.05}, None) == "1.0"
    # after a finished blue-green switch: back to the version before it
    assert traffic.rollback_target("1.1", "1.0", {"1.0": 0, "1.1": 1}, None) == "1.0"
    # an explicit version wins
    assert traffic.rollback_target("1.1", "1.0", {"1.1": 1}, "0.9") == "0.9"
    with pytest.raises(ValidationFailed):
        traffic.rollback_target("1.0", None, {"1.0": 1.0}, None)


def test_routing_never_sends_traffic_to_a_version_without_ready_replicas() -> None:
    weights = {"1.0": 0.8, "1.1": 0.2}
    assert traffic.routable_weights(weights, {"1.0": 2, "1.1": 1}, "1.0") == pytest.approx(weights)
    assert traffic.routable_weights(weights, {"1.0": 2, "1.1": 0}, "1.0") == {"1.0": 1.0}
    assert traffic.routable_weights(weights, {"1.0": 0, "1.1": 1}, "1.0") == {"1.1": 1.0}


def test_green_still_starting_keeps_traffic_on_blue() -> None:
    weights = {"1.0": 0.0, "1.1": 1.0}
    assert traffic.routable_weights(weights, {"1.0": 2, "1.1": 0}, "1.1") == {"1.0": 1.0}
    assert traffic.routable_weights(weights, {"1.0": 0, "1.1": 0}, "1.1") == {}


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c"]), st.floats(min_value=0, max_value=1), min_size=1
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=3)),
)
def test_routable_weights_only_name_ready_versions_and_sum_to_one(
    weights: dict[str, float], ready: dict[str, int]
) -> None:
    routed = traffic.routable_weights(weights, ready, "a")
    assert all(ready.get(version, 0) > 0 for version in routed)
    if routed:
        assert sum(routed.values()) == pytest.approx(1.0)
    else:
        assert not any(ready.get(version, 0) for version in weights)
