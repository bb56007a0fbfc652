"""``/v1/endpoints/{id}/autoscaling``: the policy and its decision log; automated canaries.

``POST /v1/endpoints/{id}/canary/auto`` starts a canary that the canary analysis steps
up (``steps``, one per ``step_interval_seconds``) while it stays within ``rollback_on``
compared with the stable version, and rolls back otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform
from regolo.server.api.schemas import ListResponse, Strict
from regolo.server.autoscaling.canary import validate_plan
from regolo.server.autoscaling.loop import policy_of
from regolo.server.autoscaling.policy import ScalingPolicy, policy_from_dict
from regolo.server.autoscaling.tables import AutoscalingEvent, AutoscalingPolicyRow, CanaryRun
from regolo.server.endpoints import service
from regolo.server.errors import Conflict, NotFound, ValidationFailed
from regolo.server.specs import Principal
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Endpoint

router = APIRouter(tags=["autoscaling"])

DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)


class MetricIn(Strict):
    metric: str = Field(max_length=32)
    target: float
    scale_up_threshold: float | None = None
    scale_down_threshold: float | None = None


class AutoscalingIn(Strict):
    metrics: list[MetricIn] = Field(min_length=1, max_length=5)
    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=10, ge=1, le=100)
    stable_window_seconds: float | None = None
    panic_window_seconds: float | None = None
    panic_threshold: float | None = None
    scale_up_stabilization_seconds: float | None = None
    scale_down_stabilization_seconds: float | None = None
    max_scale_up_step: int | None = None
    max_scale_down_step: int | None = None
    idle_window_seconds: float | None = None
    enabled: bool = True


class MetricOut(BaseModel):
    metric: str
    target: float
    scale_up_threshold: float | None
    scale_down_threshold: float | None


class AutoscalingOut(BaseModel):
    object: str = "autoscaling_policy"
    endpoint_id: str
    implicit: bool  # derived from the endpoint's min/max replicas and target_utilization
    metrics: list[MetricOut]
    min_replicas: int
    max_replicas: int
    stable_window_seconds: float
    panic_window_seconds: float
    panic_threshold: float
    scale_up_stabilization_seconds: float
    scale_down_stabilization_seconds: float
    max_scale_up_step: int | None
    max_scale_down_step: int | None
    idle_window_seconds: float
    enabled: bool


class EventOut(BaseModel):
    object: str = "autoscaling_event"
    id: str
    endpoint_id: str
    deployment_id: str | None
    version: str | None
    kind: str
    at: datetime
    current_replicas: int
    desired_replicas: int
    reason: str
    inputs: dict[str, Any]


class AutoCanaryIn(Strict):
    new_version: str = Field(min_length=1, max_length=64)
    traffic_percentage: float | None = Field(default=None, gt=0, lt=100)
    steps: list[float] | None = Field(default=None, min_length=1, max_length=20)
    step_interval_seconds: float = 60.0
    rollback_on: dict[str, float] = Field(default_factory=lambda: {"error_rate": 0.05})
    min_requests: int = Field(default=20, ge=1, le=1_000_000)
    replicas: int | None = Field(default=None, ge=1, le=100)
    auto_promote: bool = True


class CanaryRunOut(BaseModel):
    object: str = "canary"
    id: str
    endpoint_id: str
    deployment_id: str
    new_version: str
    stable_version: str
    traffic_percentage: int | float
    auto_promote: bool = True
    steps: list[float]
    step_index: int
    step_interval_seconds: float
    rollback_on: dict[str, float]
    min_requests: int
    state: str
    reason: str | None
    created_at: datetime
    finished_at: datetime | None


def _policy_out(endpoint_id: str, policy: ScalingPolicy, implicit: bool) -> dict[str, Any]:
    return {"endpoint_id": endpoint_id, "implicit": implicit, **policy.to_dict()}


@router.put("/v1/endpoints/{endpoint_id}/autoscaling", response_model=AutoscalingOut)
def put_policy(
    endpoint_id: str, body: AutoscalingIn, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    policy = policy_from_dict(body.model_dump(exclude_none=True))
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        row = session.get(AutoscalingPolicyRow, endpoint.id)
        if row is None:
            row = AutoscalingPolicyRow(endpoint_id=endpoint.id, account_id=caller.account_id)
            session.add(row)
        row.policy = policy.to_dict()
        _fit_endpoint(session, endpoint, policy)
        out = _policy_out(endpoint.id, policy, implicit=False)
    platform(request).notify_desired_state_changed()
    return out


def _fit_endpoint(session: Session, endpoint: Endpoint, policy: ScalingPolicy) -> None:
    """The endpoint's range follows the policy; its replica count moves inside it."""
    endpoint.min_replicas, endpoint.max_replicas = policy.min_replicas, policy.max_replicas
    fitted = min(max(endpoint.replicas, policy.min_replicas, 1), policy.max_replicas)
    for deployment in service.active_deployments(session, endpoint):
        if deployment.version == endpoint.stable_version and deployment.replicas != fitted:
            deployment.replicas = fitted
    endpoint.replicas = fitted
    endpoint.generation += 1


@router.get("/v1/endpoints/{endpoint_id}/autoscaling", response_model=AutoscalingOut)
def get_policy(
    endpoint_id: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        row = session.get(AutoscalingPolicyRow, endpoint.id)
        policy = policy_of(endpoint, row.policy if row else None)
        if policy is None:
            raise NotFound("this endpoint has no autoscaling policy", param="endpoint_id")
        return _policy_out(endpoint.id, policy, implicit=row is None)


@router.delete("/v1/endpoints/{endpoint_id}/autoscaling", status_code=204)
def delete_policy(
    endpoint_id: str, request: Request, caller: Principal = Depends(admin)
) -> Response:
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        row = session.get(AutoscalingPolicyRow, endpoint.id)
        if row is not None:
            session.delete(row)
        # Without a policy the endpoint keeps its current replicas, fixed.
        endpoint.min_replicas = endpoint.max_replicas = None
    return Response(status_code=204)


@router.get("/v1/endpoints/{endpoint_id}/autoscaling/events", response_model=ListResponse[EventOut])
def list_events(
    endpoint_id: str,
    request: Request,
    caller: Principal = Depends(admin),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        rows = session.scalars(
            select(AutoscalingEvent)
            .where(AutoscalingEvent.endpoint_id == endpoint.id)
            .order_by(AutoscalingEvent.at.desc(), AutoscalingEvent.id)
            .limit(limit)
        ).all()
        data = [EventOut.model_validate(row, from_attributes=True).model_dump() for row in rows]
    return {"object": "list", "data": data}


@router.post(
    "/v1/endpoints/{endpoint_id}/canary/auto", status_code=201, response_model=CanaryRunOut
)
def create_auto_canary(
    endpoint_id: str, body: AutoCanaryIn, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    steps, bounds = validate_plan(_steps(body), body.step_interval_seconds, body.rollback_on)
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        _refuse_second_run(session, endpoint)
        stable = endpoint.stable_version
        deployment = service.create_canary(
            session,
            endpoint,
            new_version=body.new_version,
            traffic_percentage=steps[0],
            replicas=body.replicas,
        )
        run = CanaryRun(
            id=new_id("canary"),
            endpoint_id=endpoint.id,
            account_id=caller.account_id,
            stable_version=stable or "",
            new_version=body.new_version,
            deployment_id=deployment.id,
            steps=list(steps),
            step_index=0,
            step_interval_seconds=body.step_interval_seconds,
            rollback_on=bounds,
            min_requests=body.min_requests,
            state="running" if body.auto_promote else "manual",
        )
        session.add(run)
        session.flush()
        out = _run_out(run)
    platform(request).notify_desired_state_changed()
    return out


def _steps(body: AutoCanaryIn) -> list[float]:
    if body.steps is None:
        first = body.traffic_percentage or DEFAULT_STEPS[0]
        return [first, *(s for s in DEFAULT_STEPS if s > first)]
    if body.traffic_percentage is not None and body.traffic_percentage != body.steps[0]:
        raise ValidationFailed(
            "traffic_percentage must equal the first step", param="traffic_percentage"
        )
    return body.steps


def _refuse_second_run(session: Session, endpoint: Endpoint) -> None:
    running = session.scalar(
        select(CanaryRun.id).where(
            CanaryRun.endpoint_id == endpoint.id, CanaryRun.state == "running"
        )
    )
    if running is not None:
        raise Conflict(f"canary {running} is still running on this endpoint", param="endpoint_id")


def _run_out(run: CanaryRun) -> dict[str, Any]:
    share = run.steps[run.step_index]
    return CanaryRunOut(
        id=run.id,
        endpoint_id=run.endpoint_id,
        deployment_id=run.deployment_id,
        new_version=run.new_version,
        stable_version=run.stable_version,
        traffic_percentage=int(share) if float(share).is_integer() else share,
        auto_promote=run.state != "manual",
        steps=run.steps,
        step_index=run.step_index,
        step_interval_seconds=run.step_interval_seconds,
        rollback_on=run.rollback_on,
        min_requests=run.min_requests,
        state=run.state,
        reason=run.reason,
        created_at=run.created_at,
        finished_at=run.finished_at,
    ).model_dump(mode="json")


@router.get("/v1/endpoints/{endpoint_id}/canary/runs", response_model=ListResponse[CanaryRunOut])
def list_canary_runs(
    endpoint_id: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        runs = session.scalars(
            select(CanaryRun)
            .where(CanaryRun.endpoint_id == endpoint.id)
            .order_by(CanaryRun.created_at.desc())
            .limit(100)
        ).all()
        return {"object": "list", "data": [_run_out(run) for run in runs]}
