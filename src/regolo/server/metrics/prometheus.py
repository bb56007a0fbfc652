"""The Prometheus page: request counters, latency histograms, tokens, replicas, queues,
and the replica runtimes' own metrics (``vllm:*``) passed through.

Counters come from ``metric_totals`` (cumulative, never trimmed) so they only go up and
every process serving the API shows the same numbers. Queue depth and the usage
buffer are this process's own gauges. Label values are endpoint names and versions,
never keys or secrets (RELIABILITY S3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.metrics.passthrough import ScrapeTarget, scrape, scrape_targets
from regolo.server.metrics.percentiles import LATENCY_BOUNDS_MS
from regolo.server.metrics.tables import MetricTotal
from regolo.server.store.tables import Deployment, Endpoint, Replica

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class ProcessGauges:
    """What only this process knows: its gateway's queues and usage buffer."""

    queue_depth: dict[str, int] = field(default_factory=dict)  # endpoint id -> waiting
    in_flight: dict[str, int] = field(default_factory=dict)
    usage_buffered: int = 0
    usage_dropped: int = 0


def render(
    session: Session,
    account_id: str | None,
    gauges: ProcessGauges,
    passthrough: Callable[[list[ScrapeTarget]], list[Metric]] = scrape,
) -> bytes:
    """The page for one account (``None``: every account, for the superadmin)."""
    families = list(_families(session, account_id, gauges))
    endpoints = _endpoints(session, account_id)
    families += passthrough(scrape_targets(session, endpoints))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _families(session: Session, account_id: str | None, gauges: ProcessGauges) -> Iterator[Metric]:
    endpoints = _endpoints(session, account_id)
    yield from _request_families(session, endpoints)
    yield from _replica_families(session, endpoints)
    yield from _process_families(endpoints, gauges)


def _endpoints(session: Session, account_id: str | None) -> dict[str, Endpoint]:
    query = select(Endpoint).where(Endpoint.deleted_at.is_(None))
    if account_id is not None:
        query = query.where(Endpoint.account_id == account_id)
    return {e.id: e for e in session.scalars(query)}


def _request_families(session: Session, endpoints: dict[str, Endpoint]) -> Iterator[Metric]:
    labels = ["account", "endpoint", "version", "status"]
    requests = CounterMetricFamily(
        "regolo_requests", "Requests through the gateway.", labels=labels
    )
    cache = CounterMetricFamily(
        "regolo_cache_hits", "Answers from the response cache.", labels=labels
    )
    latency = HistogramMetricFamily(
        "regolo_request_latency_seconds", "Gateway request latency.", labels=labels
    )
    tokens = CounterMetricFamily(
        "regolo_tokens", "Tokens processed.", labels=["account", "endpoint", "version", "kind"]
    )
    token_sums: dict[tuple[str, str, str, str], int] = {}
    rows = session.scalars(select(MetricTotal).where(MetricTotal.endpoint_id.in_(endpoints)))
    for row in rows:
        endpoint = endpoints[row.endpoint_id]
        values = [endpoint.account_id, endpoint.name, row.version, str(row.status_code)]
        requests.add_metric(values, row.request_count)
        cache.add_metric(values, row.cache_hits)
        latency.add_metric(values, _buckets(row.latency_buckets), row.latency_sum_ms / 1000.0)
        for kind, count in (("prompt", row.prompt_tokens), ("completion", row.completion_tokens)):
            ident = (endpoint.account_id, endpoint.name, row.version, kind)
            token_sums[ident] = token_sums.get(ident, 0) + count
    for ident, count in sorted(token_sums.items()):
        tokens.add_metric(list(ident), count)
    yield from (requests, cache, latency, tokens)


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    cumulative = list(accumulate(counts))
    bounds = [_le(bound) for bound in LATENCY_BOUNDS_MS]
    finite = [(le, float(c)) for le, c in zip(bounds, cumulative, strict=False)]
    return [*finite, ("+Inf", float(cumulative[-1] if cumulative else 0))]


def _le(bound_ms: float) -> str:
    return repr(bound_ms / 1000.0)


def _replica_families(session: Session, endpoints: dict[str, Endpoint]) -> Iterator[Metric]:
    ready = GaugeMetricFamily(
        "regolo_replicas_ready", "Replicas passing health probes.", labels=["account", "endpoint"]
    )
    total = GaugeMetricFamily(
        "regolo_replicas_total", "Replicas the endpoint wants.", labels=["account", "endpoint"]
    )
    states = GaugeMetricFamily(
        "regolo_replicas", "Live replicas by state.",
        labels=["account", "endpoint", "version", "state"],
    )  # fmt: skip
    deployments = session.scalars(
        select(Deployment).where(
            Deployment.endpoint_id.in_(endpoints), Deployment.removed_at.is_(None)
        )
    ).all()
    wanted: dict[str, int] = dict.fromkeys(endpoints, 0)
    for deployment in deployments:
        wanted[deployment.endpoint_id] += deployment.replicas
    ready_count: dict[str, int] = dict.fromkeys(endpoints, 0)
    by_state: dict[tuple[str, str, str], int] = {}
    version_of = {d.id: (d.endpoint_id, d.version) for d in deployments}
    replicas = session.execute(
        select(Replica.deployment_id, Replica.state).where(
            Replica.deployment_id.in_(version_of), Replica.stopped_at.is_(None)
        )
    ).all()
    for deployment_id, state in replicas:
        endpoint_id, version = version_of[deployment_id]
        ready_count[endpoint_id] += state == "ready"
        ident = (endpoint_id, version, state)
        by_state[ident] = by_state.get(ident, 0) + 1
    for endpoint_id, endpoint in endpoints.items():
        ready.add_metric([endpoint.account_id, endpoint.name], ready_count[endpoint_id])
        total.add_metric([endpoint.account_id, endpoint.name], wanted[endpoint_id])
    for (endpoint_id, version, state), count in sorted(by_state.items()):
        endpoint = endpoints[endpoint_id]
        states.add_metric([endpoint.account_id, endpoint.name, version, state], count)
    yield from (ready, total, states)


def _process_families(endpoints: dict[str, Endpoint], gauges: ProcessGauges) -> Iterator[Metric]:
    queue = GaugeMetricFamily(
        "regolo_queue_depth", "Requests waiting for a slot or a replica (this process).",
        labels=["account", "endpoint"],
    )  # fmt: skip
    in_flight = GaugeMetricFamily(
        "regolo_requests_in_flight", "Requests being served (this process).",
        labels=["account", "endpoint"],
    )  # fmt: skip
    for endpoint_id, endpoint in endpoints.items():
        values = [endpoint.account_id, endpoint.name]
        queue.add_metric(values, gauges.queue_depth.get(endpoint_id, 0))
        in_flight.add_metric(values, gauges.in_flight.get(endpoint_id, 0))
    buffered = GaugeMetricFamily(
        "regolo_usage_records_buffered", "Usage records waiting for the metrics flusher."
    )
    buffered.add_metric([], gauges.usage_buffered)
    dropped = CounterMetricFamily(
        "regolo_usage_records_dropped", "Usage records dropped because the buffer was full."
    )
    dropped.add_metric([], gauges.usage_dropped)
    yield from (queue, in_flight, buffered, dropped)
