"""``BucketStats``: what one time bucket knows, and how usage records and probes add to it.

Every field is a sum or a count, so buckets add up exactly: a 1 min bucket is the sum
of its 10 s buckets, a window is the sum of its buckets.
"""

from __future__ import annotations

from bisect import bisect_left as _bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from regolo.server.metrics.percentiles import LATENCY_BOUNDS_MS, add_histograms, empty_histogram
from regolo.server.specs import UsageRecord

CLIENT_CLOSED = 499
# add_requests unpacks a record's last fields by position.
_REQUEST_FIELDS = UsageRecord._fields[7:]
assert _REQUEST_FIELDS == (
    "status_code", "latency_ms", "time_to_first_token_ms", "prompt_tokens",
    "completion_tokens", "cache_hit", "streamed", "complete",
)  # fmt: skip


def is_error(status_code: int, complete: bool) -> bool:
    """5xx answers (504 timeouts included) and streams cut by the server count as errors.

    4xx are the caller's mistakes and a client that went away (499) is not the
    endpoint's fault, so neither counts against it.
    """
    if status_code >= 500 or status_code == 0:
        return True
    return status_code < 400 and not complete


@dataclass
class BucketStats:
    request_count: int = 0
    error_count: int = 0
    cache_hits: int = 0
    latency_sum_ms: float = 0.0
    latency_buckets: list[int] = field(default_factory=empty_histogram)
    ttft_count: int = 0
    ttft_sum_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_latency_sum_ms: float = 0.0  # latency of the requests that produced tokens
    probe_total: int = 0  # health ticks while the deployment was meant to be up
    probe_ok: int = 0  # ... in which at least one of its replicas answered a probe
    cpu_samples: int = 0
    cpu_ratio_sum: float = 0.0  # sum of cores used / cores requested, per replica sample
    memory_samples: int = 0
    memory_bytes_sum: float = 0.0
    memory_ratio_samples: int = 0
    memory_ratio_sum: float = 0.0  # sum of bytes used / bytes requested

    def add(self, other: BucketStats) -> None:
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, list):
                setattr(self, item.name, add_histograms(mine, theirs))
            else:
                setattr(self, item.name, mine + theirs)

    def add_requests(self, status_code: int, records: Iterable[UsageRecord]) -> None:
        """Add requests that all got ``status_code``: the flusher runs this for every
        request (most of its CPU), so a run is summed in local names and added once, and
        whether a request is an error is decided once for the status."""
        count = incomplete = hits = ttft_count = prompt = completion = 0
        latency_sum = ttft_sum = token_latency_sum = 0.0
        histogram, bounds = self.latency_buckets, LATENCY_BOUNDS_MS
        for usage in records:
            _, latency, ttft, prompt_tokens, completion_tokens, hit, _, complete = usage[7:]
            count += 1
            if not complete:
                incomplete += 1
            if hit:
                hits += 1
            latency_sum += latency
            histogram[_bisect_left(bounds, latency)] += 1
            if ttft is not None:
                ttft_count += 1
                ttft_sum += ttft
            if completion_tokens:
                completion += completion_tokens
                token_latency_sum += latency
            prompt += prompt_tokens
        self.request_count += count
        if is_error(status_code, complete=True):
            self.error_count += count
        elif is_error(status_code, complete=False):
            self.error_count += incomplete
        self.cache_hits += hits
        self.latency_sum_ms += latency_sum
        self.ttft_count += ttft_count
        self.ttft_sum_ms += ttft_sum
        self.completion_tokens += completion
        self.token_latency_sum_ms += token_latency_sum
        self.prompt_tokens += prompt

    def add_probe_tick(self, up: bool) -> None:
        self.probe_total += 1
        self.probe_ok += up

    def add_resources(
        self,
        cpu_cores_used: float | None,
        cpu_request_cores: float,
        memory_bytes: int | None,
        memory_request_bytes: int | None,
    ) -> None:
        if cpu_cores_used is not None and cpu_request_cores > 0:
            self.cpu_samples += 1
            self.cpu_ratio_sum += cpu_cores_used / cpu_request_cores
        if memory_bytes is not None:
            self.memory_samples += 1
            self.memory_bytes_sum += memory_bytes
            if memory_request_bytes:
                self.memory_ratio_samples += 1
                self.memory_ratio_sum += memory_bytes / memory_request_bytes


def stat_names() -> tuple[str, ...]:
    return tuple(item.name for item in fields(BucketStats))
