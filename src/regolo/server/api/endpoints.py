"""``/v1/endpoints``: create, list, get, update, delete; canary, traffic, rollback, promote."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform
from regolo.server.api.idempotency import idempotency_key, run_once
from regolo.server.api.schemas import ListResponse, Strict
from regolo.server.endpoints import service
from regolo.server.endpoints.service import EndpointConfig
from regolo.server.specs import Principal
from regolo.server.store.tables import Deployment, Endpoint, Model, Replica

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])


class ConfigFields(Strict):
    min_replicas: int | None = Field(default=None, ge=0, le=100)
    max_replicas: int | None = Field(default=None, ge=0, le=100)
    target_utilization: float | None = None
    cpu_request: str | None = Field(default=None, max_length=16)
    memory_request: str | None = Field(default=None, max_length=16)
    cpu_limit: str | None = Field(default=None, max_length=16)
    memory_limit: str | None = Field(default=None, max_length=16)
    request_timeout_seconds: float | None = None
    enable_cache: bool | None = None
    enable_compression: bool | None = None
    instance_type: str | None = Field(default=None, max_length=64)
    runtime: str | None = Field(default=None, pattern=r"^(llamacpp|transformers|vllm|external)$")
    runtime_options: dict[str, str | int | float | bool] | None = Field(default=None, max_length=32)
    visibility: str | None = None
    allowed_key_ids: list[str] | None = Field(default=None, max_length=1000)
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    slo_p95_latency_ms: float | None = Field(default=None, gt=0)
    slo_availability: float | None = Field(default=None, gt=0, le=100)
    slo_error_rate: float | None = Field(default=None, ge=0, le=1)
    external_url: str | None = Field(default=None, max_length=500)

    def config(self, replicas: int | None) -> EndpointConfig:
        fields = self.model_dump(exclude={"name", "model", "version", "replicas"})
        return EndpointConfig(replicas=replicas, **fields)


class EndpointCreate(ConfigFields):
    name: str = Field(min_length=1, max_length=63)
    model: str = Field(min_length=1, max_length=100)
    version: str = Field(default="1.0", min_length=1, max_length=64)
    replicas: int = Field(default=1, ge=0, le=100)


class EndpointUpdate(ConfigFields):
    replicas: int | None = Field(default=None, ge=0, le=100)


class CanaryCreate(Strict):
    new_version: str = Field(min_length=1, max_length=64)
    traffic_percentage: float = Field(gt=0, le=100)
    replicas: int | None = Field(default=None, ge=1, le=100)


class TrafficUpdate(Strict):
    version_traffic: dict[str, float] = Field(min_length=1, max_length=20)


class RollbackRequest(Strict):
    to_version: str | None = Field(default=None, max_length=64)


class DeploymentOut(BaseModel):
    id: str
    version: str
    traffic_weight: float
    replicas: int
    ready_replicas: int
    status: str
    last_error: str | None


class EndpointOut(BaseModel):
    object: str = "endpoint"
    id: str
    name: str
    model: str
    version: str | None
    status: str
    status_reason: str | None
    url: str
    replicas: int
    ready_replicas: int
    min_replicas: int
    max_replicas: int
    target_utilization: float | None
    cpu_request: str | None
    memory_request: str | None
    cpu_limit: str | None
    memory_limit: str | None
    request_timeout_seconds: float
    enable_cache: bool
    enable_compression: bool
    instance_type: str
    runtime: str | None
    runtime_options: dict[str, Any]
    visibility: str
    allowed_key_ids: list[str]
    max_concurrency: int | None
    slo_p95_latency_ms: float | None
    slo_availability: float | None
    slo_error_rate: float | None
    stable_version: str | None
    deployments: list[DeploymentOut]
    created_at: datetime
    updated_at: datetime


class CanaryOut(BaseModel):
    object: str = "canary"
    endpoint_id: str
    deployment_id: str
    new_version: str
    stable_version: str | None
    traffic_percentage: int | float  # 5 stays 5, so f"{canary.traffic_percentage}%" reads "5%"


def endpoint_out(session: Session, endpoint: Endpoint, request: Request) -> dict[str, Any]:
    model = session.get(Model, endpoint.model_id)
    assert model is not None
    deployments = []
    for deployment in service.active_deployments(session, endpoint):
        states = list(
            session.scalars(
                select(Replica.state).where(
                    Replica.deployment_id == deployment.id, Replica.stopped_at.is_(None)
                )
            )
        )
        ready = states.count("ready")
        deployments.append(_deployment_out(deployment, ready, states))
    settings = platform(request).settings
    return EndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        model=model.name,
        version=endpoint.stable_version,
        status=endpoint.status,
        status_reason=endpoint.status_reason,
        url=settings.endpoint_url(endpoint.name),
        replicas=endpoint.replicas,
        ready_replicas=sum(d.ready_replicas for d in deployments),
        min_replicas=endpoint.min_replicas
        if endpoint.min_replicas is not None
        else endpoint.replicas,
        max_replicas=endpoint.max_replicas
        if endpoint.max_replicas is not None
        else endpoint.replicas,
        target_utilization=endpoint.target_utilization,
        cpu_request=endpoint.cpu_request,
        memory_request=endpoint.memory_request,
        cpu_limit=endpoint.cpu_limit,
        memory_limit=endpoint.memory_limit,
        request_timeout_seconds=endpoint.request_timeout_seconds,
        enable_cache=endpoint.enable_cache,
        enable_compression=endpoint.enable_compression,
        instance_type=endpoint.instance_type,
        runtime=endpoint.runtime,
        runtime_options=endpoint.runtime_options or {},
        visibility=endpoint.visibility,
        allowed_key_ids=endpoint.allowed_key_ids or [],
        max_concurrency=endpoint.max_concurrency,
        slo_p95_latency_ms=endpoint.slo_p95_latency_ms,
        slo_availability=endpoint.slo_availability,
        slo_error_rate=endpoint.slo_error_rate,
        stable_version=endpoint.stable_version,
        deployments=deployments,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    ).model_dump(mode="json")


def _deployment_out(deployment: Deployment, ready: int, states: list[str]) -> DeploymentOut:
    if ready >= deployment.replicas:
        status = "ready"
    elif "starting" in states:
        status = "deploying"
    else:
        status = "pending"
    return DeploymentOut(
        id=deployment.id,
        version=deployment.version,
        traffic_weight=deployment.traffic_weight,
        replicas=deployment.replicas,
        ready_replicas=ready,
        status=status,
        last_error=deployment.last_error,
    )


def _changed(request: Request) -> None:
    platform(request).notify_desired_state_changed()


@router.post("", status_code=201, response_model=EndpointOut)
def create(
    body: EndpointCreate, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    services = platform(request)
    config = body.config(body.replicas)
    services.check_instance(config.instance_type, body.model, body.version, caller.account_id)

    def create_in(session: Session) -> dict[str, Any]:
        endpoint = service.create_endpoint(
            session,
            account_id=caller.account_id,
            name=body.name,
            model=body.model,
            version=body.version,
            config=config,
        )
        return endpoint_out(session, endpoint, request)

    out = run_once(
        services.db,
        account_id=caller.account_id,
        key=idempotency_key(request),
        request=request,
        create=create_in,
    )
    _changed(request)
    return out


@router.get("", response_model=ListResponse[EndpointOut])
def list_endpoints(
    request: Request,
    caller: Principal = Depends(admin),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        rows = session.scalars(
            select(Endpoint)
            .where(Endpoint.account_id == caller.account_id, Endpoint.deleted_at.is_(None))
            .order_by(Endpoint.created_at)
            .limit(limit)
        ).all()
        return {"object": "list", "data": [endpoint_out(session, e, request) for e in rows]}


@router.get("/{endpoint_id}", response_model=EndpointOut)
def get(endpoint_id: str, request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        return endpoint_out(
            session, service.find_endpoint(session, caller.account_id, endpoint_id), request
        )


@router.patch("/{endpoint_id}", response_model=EndpointOut)
def update(
    endpoint_id: str, body: EndpointUpdate, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        service.update_endpoint(session, endpoint, body.config(body.replicas))
        out = endpoint_out(session, endpoint, request)
    _changed(request)
    return out


@router.delete("/{endpoint_id}", status_code=204)
def delete(endpoint_id: str, request: Request, caller: Principal = Depends(admin)) -> Response:
    with platform(request).db.write() as session:
        service.delete_endpoint(
            session, service.find_endpoint(session, caller.account_id, endpoint_id)
        )
    _changed(request)
    return Response(status_code=204)


@router.post("/{endpoint_id}/canary", status_code=201, response_model=CanaryOut)
def canary(
    endpoint_id: str, body: CanaryCreate, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        deployment = service.create_canary(
            session,
            endpoint,
            new_version=body.new_version,
            traffic_percentage=body.traffic_percentage,
            replicas=body.replicas,
        )
        out = CanaryOut(
            endpoint_id=endpoint.id,
            deployment_id=deployment.id,
            new_version=body.new_version,
            stable_version=endpoint.stable_version,
            traffic_percentage=_as_given(body.traffic_percentage),
        ).model_dump(mode="json")
    _changed(request)
    return out


def _as_given(number: float) -> int | float:
    return int(number) if number.is_integer() else number


def _endpoint_action(
    request: Request, caller: Principal, endpoint_id: str, action: Any
) -> dict[str, Any]:
    with platform(request).db.write() as session:
        endpoint = service.find_endpoint(session, caller.account_id, endpoint_id)
        action(session, endpoint)
        out = endpoint_out(session, endpoint, request)
    _changed(request)
    return out


@router.put("/{endpoint_id}/traffic", response_model=EndpointOut)
def traffic(
    endpoint_id: str, body: TrafficUpdate, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    return _endpoint_action(
        request, caller, endpoint_id, lambda s, e: service.set_traffic(s, e, body.version_traffic)
    )


@router.post("/{endpoint_id}/rollback", response_model=EndpointOut)
def rollback(
    endpoint_id: str,
    request: Request,
    body: RollbackRequest | None = None,
    caller: Principal = Depends(admin),
) -> dict[str, Any]:
    to_version = body.to_version if body else None
    return _endpoint_action(
        request, caller, endpoint_id, lambda s, e: service.rollback(s, e, to_version)
    )


@router.post("/{endpoint_id}/promote", response_model=EndpointOut)
def promote(
    endpoint_id: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    return _endpoint_action(request, caller, endpoint_id, service.promote)
