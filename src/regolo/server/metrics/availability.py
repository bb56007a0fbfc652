"""Availability: the share of good events while an endpoint was meant to be up.

Two kinds of events count, one each:

- a *health tick* of a deployment that is meant to be up (it has replicas wanted and
  was ready at least once, so a first start-up is not an outage): good when at least
  one of its replicas answered the health checker's real inference probe;
- a *request*: good unless it was an error (5xx, timeout, stream cut by the server).

With nothing to count (no ticks, no requests) nothing failed, so availability is 1.
"""

from __future__ import annotations


def availability(probe_ok: int, probe_total: int, request_errors: int, request_count: int) -> float:
    events = probe_total + request_count
    if events == 0:
        return 1.0
    good = probe_ok + (request_count - request_errors)
    return good / events


def deployment_up(replica_probe_results: list[bool]) -> bool:
    """A deployment is up in a tick when any of its replicas passed its probe."""
    return any(replica_probe_results)
