"""Autoscaling calls of the control-plane API: the policy, its decision log, canary runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from regolo._http import HTTPSession, list_data
from regolo._urls import segment


class _AutoscalingObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class ScalingMetric(_AutoscalingObject):
    metric: str
    target: float
    scale_up_threshold: float | None = None
    scale_down_threshold: float | None = None


class AutoscalingPolicy(_AutoscalingObject):
    """An endpoint's autoscaling policy (``implicit``: derived from min/max replicas)."""

    endpoint_id: str
    metrics: list[ScalingMetric]
    min_replicas: int
    max_replicas: int
    implicit: bool = False
    stable_window_seconds: float = 60.0
    panic_window_seconds: float = 6.0
    scale_down_stabilization_seconds: float = 60.0
    idle_window_seconds: float = 300.0
    enabled: bool = True


class AutoscalingEvent(_AutoscalingObject):
    """One recorded decision: what changed (or held), why, and the numbers it used."""

    id: str
    kind: str  # scale | hold | canary
    at: datetime
    current_replicas: int
    desired_replicas: int
    reason: str
    version: str | None = None
    deployment_id: str | None = None
    inputs: dict[str, Any] = {}


class CanaryRun(_AutoscalingObject):
    """An automated canary: its steps, bounds, and state (running, promoted, rolled_back)."""

    id: str
    endpoint_id: str
    new_version: str
    stable_version: str
    traffic_percentage: int | float
    steps: list[float]
    state: str
    reason: str | None = None


class AutoscalingAPI:
    _http: HTTPSession

    def configure_autoscaling(
        self,
        endpoint_id: str,
        metrics: list[dict[str, Any]],
        min_replicas: int = 1,
        max_replicas: int = 10,
        **windows: Any,
    ) -> AutoscalingPolicy:
        """Scale an endpoint on its metrics between ``min_replicas`` and ``max_replicas``.

        Example:
            client.configure_autoscaling(
                "sentiment-api",
                metrics=[{"metric": "request_rate", "target": 100}],
                min_replicas=0,
                max_replicas=5,
                idle_window_seconds=300,
            )
        """
        body = {"metrics": metrics, "min_replicas": min_replicas, "max_replicas": max_replicas}
        body.update({key: value for key, value in windows.items() if value is not None})
        response = self._http.request("PUT", _path(endpoint_id), json=body)
        return AutoscalingPolicy.model_validate(response)

    def get_autoscaling(self, endpoint_id: str) -> AutoscalingPolicy:
        """The endpoint's policy.  Example: client.get_autoscaling("sentiment-api").max_replicas"""
        return AutoscalingPolicy.model_validate(self._http.request("GET", _path(endpoint_id)))

    def delete_autoscaling(self, endpoint_id: str) -> None:
        """Stop autoscaling; replicas stay as they are.  Example: client.delete_autoscaling("x")"""
        self._http.request("DELETE", _path(endpoint_id))

    def list_autoscaling_events(self, endpoint_id: str, limit: int = 100) -> list[AutoscalingEvent]:
        """Recent decisions, newest first.

        Example: [e.reason for e in client.list_autoscaling_events("sentiment-api")]
        """
        body = self._http.request("GET", f"{_path(endpoint_id)}/events", params={"limit": limit})
        return [AutoscalingEvent.model_validate(item) for item in list_data(body)]

    def list_canary_runs(self, endpoint_id: str) -> list[CanaryRun]:
        """Automated canaries of an endpoint, newest first.

        Example: client.list_canary_runs("sentiment-api")[0].state
        """
        path = f"/v1/endpoints/{segment(endpoint_id)}/canary/runs"
        return [CanaryRun.model_validate(i) for i in list_data(self._http.request("GET", path))]


def _path(endpoint_id: str) -> str:
    return f"/v1/endpoints/{segment(endpoint_id)}/autoscaling"


__all__ = ["AutoscalingAPI", "AutoscalingEvent", "AutoscalingPolicy", "CanaryRun", "ScalingMetric"]
