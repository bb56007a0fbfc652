"""Reading a window of an endpoint's buckets: the total, each version, and a chart series."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from regolo.server.metrics.bucket_store import read_buckets, stats_of
from regolo.server.metrics.rollup import TimeRange, bucket_start, series_starts, window
from regolo.server.metrics.stats import BucketStats


@dataclass
class WindowStats:
    start: datetime
    end: datetime
    total: BucketStats = field(default_factory=BucketStats)
    versions: dict[str, BucketStats] = field(default_factory=dict)
    series: list[tuple[datetime, BucketStats]] = field(default_factory=list)


def window_stats(
    session: Session, endpoint_id: str, time_range: TimeRange, now: datetime
) -> WindowStats:
    start, end = window(now, time_range)
    found = WindowStats(start=start, end=end)
    points = {at: BucketStats() for at in series_starts(start, end, time_range.step_seconds)}
    for row in read_buckets(session, endpoint_id, time_range.resolution_seconds, start, end):
        stats = stats_of(row)
        found.total.add(stats)
        if row.version:  # "" holds requests that never reached a deployment
            found.versions.setdefault(row.version, BucketStats()).add(stats)
        point = points.get(bucket_start(row.bucket_start, time_range.step_seconds))
        if point is not None:
            point.add(stats)
    found.series = sorted(points.items())
    return found
