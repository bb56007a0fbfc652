"""Synthetic load traces replayed in simulated time through the decision."""

from __future__ import annotations

import math
import random

from regolo.server.autoscaling.policy import policy_from_dict
from regolo.server.autoscaling.simulate import HpaSettings, simulate_hpa, simulate_regolo

RATE_POLICY = policy_from_dict(
    {
        "metrics": [
            {
                "metric": "request_rate",
                "target": 100,
                "scale_up_threshold": 150,
                "scale_down_threshold": 50,
            }
        ],
        "min_replicas": 2,
        "max_replicas": 50,
    }
)


def step(t: float) -> float:
    return 200.0 if t < 60 or t >= 300 else 2000.0


def test_a_load_step_is_answered_within_five_seconds_and_shrinks_later() -> None:
    run = simulate_regolo(step, RATE_POLICY, seconds=600, initial=2)
    first = run.first_change_after(60)
    assert first is not None and first <= 5
    assert max(run.replicas) >= 20
    capacity = run.capacity_after(60, 20)
    assert capacity is not None and capacity <= 15
    # back down once the stabilization window passed, to where 200 rpm sits inside the band
    assert 2 <= run.replicas[-1] <= 4
    down = [at for at, before, after in run.changes if after < before]
    assert down and min(down) >= 300 + RATE_POLICY.scale_down_stabilization_seconds


def test_a_ramp_is_followed_without_going_down() -> None:
    def ramp(t: float) -> float:
        return 100.0 + 10.0 * t  # +10 rpm every second

    run = simulate_regolo(ramp, RATE_POLICY, seconds=300, initial=2)
    assert all(after > before for _, before, after in run.changes)
    # at the end: 3100 rpm wants 31 replicas; the thresholds allow 150 rpm per replica
    assert 3100 / 150 <= run.replicas[-1] <= 32


def test_a_short_spike_scales_up_fast_and_is_not_forgotten_at_once() -> None:
    def spike(t: float) -> float:
        return 3000.0 if 100 <= t < 110 else 300.0

    run = simulate_regolo(spike, RATE_POLICY, seconds=400, initial=3)
    first = run.first_change_after(100)
    assert first is not None and first <= 2
    assert max(run.replicas) >= 15
    peak_at = run.replicas.index(max(run.replicas))
    assert all(n == max(run.replicas) for n in run.replicas[peak_at : 110 + 30])
    assert run.replicas[-1] <= 6 < max(run.replicas)  # 300 rpm on 6 is inside the band


def test_noisy_steady_load_does_not_oscillate() -> None:
    rng = random.Random(7)
    noise = [1000.0 * max(0.0, 1 + rng.gauss(0, 0.3)) for _ in range(1800)]
    run = simulate_regolo(lambda t: noise[int(t)], RATE_POLICY, seconds=1800, initial=10)
    window = RATE_POLICY.stable_window_seconds
    for start in range(0, 1800, int(window)):
        assert run.direction_changes(start, start + window) <= 1
    hpa = simulate_hpa(
        lambda t: noise[int(t)],
        HpaSettings(target=100, min_replicas=2, max_replicas=50),
        seconds=1800,
        initial=10,
    )
    assert run.direction_changes() <= hpa.direction_changes()


def test_a_sine_wave_changes_direction_at_most_once_per_window() -> None:
    def wave(t: float) -> float:
        return 1000.0 + 400.0 * math.sin(2 * math.pi * t / 600.0)

    run = simulate_regolo(wave, RATE_POLICY, seconds=1800, initial=10)
    for start in range(0, 1800, 60):
        assert run.direction_changes(start, start + 60) <= 1


def test_idle_to_zero_and_back() -> None:
    policy = policy_from_dict(
        {
            "metrics": [{"metric": "request_rate", "target": 100}],
            "min_replicas": 0,
            "max_replicas": 5,
            "idle_window_seconds": 120,
        }
    )

    def trace(t: float) -> float:
        return 60.0 if t < 30 or t >= 400 else 0.0

    run = simulate_regolo(trace, policy, seconds=500, initial=1)
    zero_at = next(s for s, n in enumerate(run.replicas) if n == 0)
    assert 29 + 120 <= zero_at <= 30 + 125  # the last busy second is 29
    assert run.replicas[399] == 0
    assert run.replicas[400] == 1  # the first request brings one replica back at once
