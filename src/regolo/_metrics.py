"""Endpoint metrics, health and SLO calls of the control-plane API, and their objects."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from regolo._http import HTTPSession
from regolo._urls import segment


class _MetricsObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class VersionMetrics(_MetricsObject):
    """The numbers of one window, for an endpoint or one of its versions.

    Rates are 0..1: ``error_rate`` (5xx, timeouts and streams cut by the server over
    requests), ``availability`` (good health ticks and requests over all of them while
    the endpoint was meant to be up), ``cpu_usage`` (cores used over cores requested),
    ``memory_usage`` (bytes used over ``memory_request``; None when unset),
    ``cache_hit_rate``. ``tokens_per_second`` is the generation speed callers saw.
    """

    request_count: int = 0
    error_count: int = 0
    avg_latency_ms: float = 0.0
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    error_rate: float = 0.0
    availability: float = 1.0
    cpu_usage: float = 0.0
    cpu_samples: int = 0
    memory_usage: float | None = None
    avg_memory_bytes: float | None = None
    tokens_per_second: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_ms: float | None = None
    cache_hit_rate: float = 0.0


class MetricsPoint(VersionMetrics):
    """One step of the chart series, starting at ``start``."""

    start: datetime


class EndpointMetrics(VersionMetrics):
    """An endpoint's metrics over ``time_range``, with a series and a per-version breakdown."""

    endpoint_id: str = ""
    endpoint: str = ""
    time_range: str = "24h"
    start: datetime | None = None
    end: datetime | None = None
    resolution_seconds: int = 0
    step_seconds: int = 0
    series: list[MetricsPoint] = Field(default_factory=list)
    version: dict[str, VersionMetrics] = Field(default_factory=dict)


class ReplicaHealth(_MetricsObject):
    id: str
    version: str = ""
    state: str = ""
    reason: str | None = None
    consecutive_failures: int = 0
    last_probe_at: datetime | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    cpu_cores_used: float | None = None
    memory_bytes: int | None = None


class EndpointHealth(_MetricsObject):
    """``status``: healthy, degraded, unhealthy, starting, failed or scaled_to_zero."""

    endpoint_id: str = ""
    endpoint: str = ""
    status: str = ""
    endpoint_status: str = ""
    ready_replicas: int = 0
    total_replicas: int = 0
    last_check: datetime | None = None
    replicas: list[ReplicaHealth] = Field(default_factory=list)


class SloObjective(_MetricsObject):
    name: str
    target: float
    actual: float | None = None
    met: bool = True
    error_budget_remaining: float = 1.0


class EndpointSlo(_MetricsObject):
    endpoint_id: str = ""
    endpoint: str = ""
    time_range: str = "30d"
    start: datetime | None = None
    end: datetime | None = None
    met: bool = True
    objectives: list[SloObjective] = Field(default_factory=list)


class MetricsAPI:
    _http: HTTPSession

    def get_endpoint_metrics(self, endpoint_id: str, time_range: str = "24h") -> EndpointMetrics:
        """Requests, latency, errors, availability and resource use over a window
        (``15m``, ``1h``, ``24h``, ``7d`` or ``30d``).

        Example:
            metrics = client.get_endpoint_metrics("sentiment-api", time_range="24h")
            print(metrics.request_count, metrics.p95_latency_ms, metrics.version["1.1"].error_rate)
        """
        body = self._http.request(
            "GET", f"{_path(endpoint_id)}/metrics", params={"time_range": time_range}
        )
        return EndpointMetrics.model_validate(body)

    def check_endpoint_health(self, endpoint_id: str) -> EndpointHealth:
        """Replica readiness as the health checker last saw it.

        Example:
            health = client.check_endpoint_health("sentiment-api")
            print(health.status, health.ready_replicas, "/", health.total_replicas)
        """
        return EndpointHealth.model_validate(
            self._http.request("GET", f"{_path(endpoint_id)}/health")
        )

    def get_endpoint_slo(self, endpoint_id: str, time_range: str = "30d") -> EndpointSlo:
        """The endpoint's SLO targets checked over a window, with the error budget left.

        Example:
            for objective in client.get_endpoint_slo("sentiment-api").objectives:
                print(objective.name, objective.met, objective.error_budget_remaining)
        """
        body = self._http.request(
            "GET", f"{_path(endpoint_id)}/slo", params={"time_range": time_range}
        )
        return EndpointSlo.model_validate(body)


def _path(endpoint_id: str) -> str:
    return f"/v1/endpoints/{segment(endpoint_id)}"
