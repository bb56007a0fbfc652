from __future__ import annotations

import pytest

from regolo.server.autoscaling.policy import implicit_policy, policy_from_dict
from regolo.server.errors import ValidationFailed

SEED = {
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


def test_the_seed_policy_is_accepted_as_written() -> None:
    policy = policy_from_dict(SEED)
    assert [m.metric for m in policy.metrics] == ["cpu_usage", "request_rate"]
    assert policy.metrics[1].up_threshold == 150
    assert (policy.min_replicas, policy.max_replicas) == (2, 50)
    assert policy_from_dict(policy.to_dict()) == policy


def test_thresholds_default_to_a_ten_percent_band() -> None:
    policy = policy_from_dict({"metrics": [{"metric": "concurrency", "target": 4}]})
    assert policy.metrics[0].up_threshold == pytest.approx(4.4)
    assert policy.metrics[0].down_threshold == pytest.approx(3.6)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"metrics": []}, "metrics"),
        ({"metrics": [{"metric": "gpu_magic", "target": 1}]}, "metrics[0].metric"),
        ({"metrics": [{"metric": "cpu_usage", "target": 1.5}]}, "metrics[0].target"),
        ({"metrics": [{"metric": "request_rate", "target": 0}]}, "metrics[0].target"),
        (
            {"metrics": [{"metric": "request_rate", "target": 100, "scale_up_threshold": 90}]},
            "metrics[0].scale_up_threshold",
        ),
        (
            {"metrics": [{"metric": "request_rate", "target": 100, "scale_down_threshold": 120}]},
            "metrics[0].scale_down_threshold",
        ),
        (
            {"metrics": [{"metric": "request_rate", "target": 100, "colour": 1}]},
            "metrics[0].colour",
        ),
        ({"min_replicas": 5, "max_replicas": 4}, "min_replicas"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"max_replicas": 1000}, "max_replicas"),
        ({"idle_window_seconds": -5}, "idle_window_seconds"),
        ({"panic_window_seconds": 120}, "panic_window_seconds"),
        ({"max_scale_up_step": 0}, "max_scale_up_step"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_policies_name_the_parameter(change: dict[str, object], param: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        policy_from_dict({**SEED, **change})
    assert info.value.param == param


def test_duplicate_metrics_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        policy_from_dict({"metrics": [SEED["metrics"][0], SEED["metrics"][0]]})  # type: ignore[index]


def test_min_zero_is_allowed() -> None:
    assert policy_from_dict({**SEED, "min_replicas": 0}).min_replicas == 0


def test_endpoint_range_and_target_utilization_give_an_implicit_cpu_policy() -> None:
    policy = implicit_policy(2, 20, 0.7)
    assert policy is not None
    assert policy.metrics[0].metric == "cpu_usage" and policy.metrics[0].target == 0.7
    assert implicit_policy(None, None, 0.7) is None
    assert implicit_policy(3, 3, None) is None
