"""Endpoint metrics, health and SLOs (``/v1/endpoints/{id}/...``) and the Prometheus page.

``/metrics`` sits outside ``/v1`` but behind the same middleware, so it answers 401
without a key like every other route; it needs an admin key and shows that account's
endpoints (every account's for the superadmin).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform
from regolo.server.endpoints import service
from regolo.server.metrics import prometheus
from regolo.server.metrics.health_status import endpoint_health_status
from regolo.server.metrics.query import window_stats
from regolo.server.metrics.rollup import TIME_RANGES
from regolo.server.metrics.slo import SloTargets, evaluate
from regolo.server.metrics.stats import BucketStats
from regolo.server.metrics.summary import MetricsSummary, summarize
from regolo.server.specs import Principal
from regolo.server.store.tables import Endpoint, Replica

router = APIRouter(tags=["metrics"])

RangeName = Literal["15m", "1h", "24h", "7d", "30d"]


class SummaryOut(BaseModel):
    request_count: int
    error_count: int
    avg_latency_ms: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None
    error_rate: float
    availability: float
    cpu_usage: float
    cpu_samples: int
    memory_usage: float | None
    avg_memory_bytes: float | None
    tokens_per_second: float
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_ms: float | None
    cache_hit_rate: float


class SeriesPoint(SummaryOut):
    start: datetime


class EndpointMetricsOut(SummaryOut):
    object: Literal["endpoint.metrics"] = "endpoint.metrics"
    endpoint_id: str
    endpoint: str
    time_range: str
    start: datetime
    end: datetime
    resolution_seconds: int
    step_seconds: int
    series: list[SeriesPoint]
    version: dict[str, SummaryOut]


class ReplicaHealthOut(BaseModel):
    id: str
    version: str
    state: str
    reason: str | None
    consecutive_failures: int
    last_probe_at: datetime | None
    started_at: datetime | None
    ready_at: datetime | None
    cpu_cores_used: float | None
    memory_bytes: int | None


class EndpointHealthOut(BaseModel):
    object: Literal["endpoint.health"] = "endpoint.health"
    endpoint_id: str
    endpoint: str
    status: str
    endpoint_status: str
    ready_replicas: int
    total_replicas: int
    last_check: datetime | None
    replicas: list[ReplicaHealthOut]


class ObjectiveOut(BaseModel):
    name: str
    target: float
    actual: float | None
    met: bool
    error_budget_remaining: float


class EndpointSloOut(BaseModel):
    object: Literal["endpoint.slo"] = "endpoint.slo"
    endpoint_id: str
    endpoint: str
    time_range: str
    start: datetime
    end: datetime
    met: bool
    objectives: list[ObjectiveOut]


def _clock(request: Request) -> Callable[[], datetime]:
    """The API's clock; tests put a simulated one on ``app.state.metrics_clock``."""
    return getattr(request.app.state, "metrics_clock", None) or (lambda: datetime.now(UTC))


def _summary(stats: BucketStats) -> dict[str, Any]:
    summary: MetricsSummary = summarize(stats)
    return dict(summary.__dict__)


@router.get("/v1/endpoints/{endpoint_id}/metrics", response_model=EndpointMetricsOut)
def endpoint_metrics(
    endpoint_id: str,
    request: Request,
    time_range: RangeName = Query(default="24h"),
    caller: Principal = Depends(admin),
) -> dict[str, Any]:
    chosen = TIME_RANGES[time_range]
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        found = window_stats(session, endpoint.id, chosen, _clock(request)())
    return EndpointMetricsOut(
        endpoint_id=endpoint.id,
        endpoint=endpoint.name,
        time_range=time_range,
        start=found.start,
        end=found.end,
        resolution_seconds=chosen.resolution_seconds,
        step_seconds=chosen.step_seconds,
        series=[SeriesPoint(start=at, **_summary(stats)) for at, stats in found.series],
        version={name: SummaryOut(**_summary(stats)) for name, stats in found.versions.items()},
        **_summary(found.total),
    ).model_dump(mode="json")


@router.get("/v1/endpoints/{endpoint_id}/health", response_model=EndpointHealthOut)
def endpoint_health(
    endpoint_id: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        return _health(session, endpoint).model_dump(mode="json")


def _health(session: Session, endpoint: Endpoint) -> EndpointHealthOut:
    deployments = service.active_deployments(session, endpoint)
    version_of = {d.id: d.version for d in deployments}
    replicas = session.scalars(
        select(Replica)
        .where(Replica.deployment_id.in_(version_of), Replica.stopped_at.is_(None))
        .order_by(Replica.created_at)
    ).all()
    ready = sum(r.state == "ready" for r in replicas)
    desired = sum(d.replicas for d in deployments)
    probes = [r.last_probe_at for r in replicas if r.last_probe_at is not None]
    return EndpointHealthOut(
        endpoint_id=endpoint.id,
        endpoint=endpoint.name,
        status=endpoint_health_status(
            desired=desired, ready=ready, endpoint_status=endpoint.status
        ),
        endpoint_status=endpoint.status,
        ready_replicas=ready,
        total_replicas=desired,
        last_check=max(probes) if probes else None,
        replicas=[_replica_out(r, version_of[r.deployment_id]) for r in replicas],
    )


def _replica_out(replica: Replica, version: str) -> ReplicaHealthOut:
    return ReplicaHealthOut(
        id=replica.id,
        version=version,
        state=replica.state,
        reason=replica.reason,
        consecutive_failures=replica.consecutive_failures,
        last_probe_at=replica.last_probe_at,
        started_at=replica.started_at,
        ready_at=replica.ready_at,
        cpu_cores_used=replica.cpu_cores_used,
        memory_bytes=replica.memory_bytes,
    )


@router.get("/v1/endpoints/{endpoint_id}/slo", response_model=EndpointSloOut)
def endpoint_slo(
    endpoint_id: str,
    request: Request,
    time_range: RangeName = Query(default="30d"),
    caller: Principal = Depends(admin),
) -> dict[str, Any]:
    chosen = TIME_RANGES[time_range]
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        found = window_stats(session, endpoint.id, chosen, _clock(request)())
    targets = SloTargets(
        p95_latency_ms=endpoint.slo_p95_latency_ms,
        availability=endpoint.slo_availability,
        error_rate=endpoint.slo_error_rate,
    )
    objectives = evaluate(targets, found.total)
    return EndpointSloOut(
        endpoint_id=endpoint.id,
        endpoint=endpoint.name,
        time_range=time_range,
        start=found.start,
        end=found.end,
        met=all(o.met for o in objectives),
        objectives=[ObjectiveOut(**o.__dict__) for o in objectives],
    ).model_dump(mode="json")


@router.get("/metrics", include_in_schema=False)
def prometheus_page(request: Request, caller: Principal = Depends(admin)) -> Response:
    services = platform(request)
    account_id = None if caller.is_superadmin else caller.account_id
    with services.db.read() as session:
        page = prometheus.render(session, account_id, _process_gauges(services))
    return Response(content=page, media_type=prometheus.CONTENT_TYPE)


def _process_gauges(services: Any) -> prometheus.ProcessGauges:
    gauges = prometheus.ProcessGauges(
        usage_buffered=len(services.usage), usage_dropped=services.usage.dropped
    )
    gateway = services.gateway
    if gateway is None:
        return gauges
    # The gateway keeps its gates and waiters private; read them without holding its loop.
    for endpoint_id, gate in dict(getattr(gateway, "_gates", {})).items():
        gauges.queue_depth[endpoint_id] = gate.queued
        gauges.in_flight[endpoint_id] = gate.in_flight
    for endpoint_id, waiting in dict(getattr(gateway, "_replica_waiters", {})).items():
        gauges.queue_depth[endpoint_id] = gauges.queue_depth.get(endpoint_id, 0) + waiting
    return gauges
