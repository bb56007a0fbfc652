from __future__ import annotations

from pathlib import Path

import pytest

from regolo.server.batch.limits import BatchLimits, limits_from
from regolo.server.settings import Settings


def test_every_runner_knob_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGOLO_BATCH_SLOTS_PER_REPLICA", "8")
    monkeypatch.setenv("REGOLO_BATCH_QUEUE_AHEAD_PER_REPLICA", "0")
    monkeypatch.setenv("REGOLO_BATCH_RESUME_AFTER_ONLINE_SECONDS", "2.5")
    monkeypatch.setenv("REGOLO_BATCH_MAX_ATTEMPTS", "5")
    limits = limits_from(Settings(home=tmp_path))
    assert (
        limits.slots_per_replica,
        limits.queue_ahead_per_replica,
        limits.resume_after_online_seconds,
        limits.max_attempts,
    ) == (8, 0, 2.5, 5)
    assert limits.lease_seconds == BatchLimits().lease_seconds  # unset: the default
