"""The batch API's limits and runner knobs, with the regolo docs' defaults.

``Settings`` may carry overrides as ``batch_<field>`` (for example
``batch_max_lines``); anything it lacks keeps the default here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    max_lines: int = 10_000
    max_file_bytes: int = 500 * 1024 * 1024
    max_line_bytes: int = 4 * 1024 * 1024
    max_validation_errors: int = 100  # reported per failed batch
    max_running_per_account: int = 10  # batches past validation at once
    max_inflight_per_batch: int = 32
    slots_per_replica: int = 4  # what a replica serves at once (llama.cpp --parallel)
    queue_ahead_per_replica: int = 4  # sent beyond the slots, so no slot idles between lines
    lease_seconds: float = 600.0  # a claimed line returns to the queue after this
    max_attempts: int = 3  # tries per line when the replica is unreachable or 5xx
    # batch work starts on a replica again only after this long without online requests
    resume_after_online_seconds: float = 0.5
    # batch work holds every slot of a replica for at most this long, then hands one
    # back: health probes (and gateways in other processes) need a free slot
    longest_full_hold_seconds: float = 5.0
    # longest wait for a free slot between two looks: a slot freed or online traffic
    # ending wakes the waiting workers at once; this only catches routing changes
    idle_backoff_seconds: float = 0.5


def limits_from(settings: Any) -> BatchLimits:
    overrides = {
        f.name: getattr(settings, f"batch_{f.name}")
        for f in fields(BatchLimits)
        if getattr(settings, f"batch_{f.name}", None) is not None
    }
    return replace(BatchLimits(), **overrides)
