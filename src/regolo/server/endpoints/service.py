"""Desired-state writes for endpoints and their deployments.

These functions only change rows inside the caller's transaction; the reconciler
starts and stops replicas to match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from regolo.server.endpoints import traffic
from regolo.server.errors import Conflict, NotFound, ValidationFailed
from regolo.server.quantities import parse_cpu, parse_memory
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Model, ModelVersion

ENDPOINT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_REPLICAS = 100


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """The fields a create or update may set (None: leave as is / default)."""

    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_utilization: float | None = None
    cpu_request: str | None = None
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    request_timeout_seconds: float | None = None
    enable_cache: bool | None = None
    enable_compression: bool | None = None
    instance_type: str | None = None
    runtime: str | None = None
    runtime_options: dict[str, Any] | None = None
    visibility: str | None = None
    allowed_key_ids: list[str] | None = None
    max_concurrency: int | None = None
    slo_p95_latency_ms: float | None = None
    slo_availability: float | None = None
    slo_error_rate: float | None = None
    external_url: str | None = None


def find_endpoint(session: Session, account_id: str, endpoint_id: str) -> Endpoint:
    """By id or by name, inside one account; 404 for anything else (no existence leak)."""
    endpoint = session.scalar(
        select(Endpoint).where(
            Endpoint.account_id == account_id,
            Endpoint.deleted_at.is_(None),
            or_(Endpoint.id == endpoint_id, Endpoint.name == endpoint_id),
        )
    )
    if endpoint is None:
        raise NotFound(f"no endpoint {endpoint_id!r}", param="endpoint_id")
    return endpoint


def find_model_version(session: Session, account_id: str, model: str, version: str) -> ModelVersion:
    row = session.execute(
        select(ModelVersion, Model)
        .join(Model)
        .where(Model.account_id == account_id, Model.name == model, ModelVersion.version == version)
    ).first()
    if row is None:
        exists = session.scalar(
            select(Model).where(Model.account_id == account_id, Model.name == model)
        )
        if exists is None:
            raise ValidationFailed(f"model {model!r} is not in your library", param="model")
        raise ValidationFailed(f"model {model!r} has no version {version!r}", param="version")
    model_version: ModelVersion = row[0]
    if model_version.status == "failed":
        raise ValidationFailed(
            f"model {model}:{version} failed to download: {model_version.status_reason}",
            param="version",
        )
    return model_version


def active_deployments(session: Session, endpoint: Endpoint) -> list[Deployment]:
    return list(
        session.scalars(
            select(Deployment)
            .where(Deployment.endpoint_id == endpoint.id, Deployment.removed_at.is_(None))
            .order_by(Deployment.created_at)
        )
    )


def current_weights(deployments: list[Deployment]) -> dict[str, float]:
    return {deployment.version: deployment.traffic_weight for deployment in deployments}


def validate_config(config: EndpointConfig, endpoint: Endpoint | None = None) -> None:
    replicas = config.replicas if config.replicas is not None else getattr(endpoint, "replicas", 1)
    low = (
        config.min_replicas
        if config.min_replicas is not None
        else getattr(endpoint, "min_replicas", None)
    )
    high = (
        config.max_replicas
        if config.max_replicas is not None
        else getattr(endpoint, "max_replicas", None)
    )
    if not 0 <= replicas <= MAX_REPLICAS:
        raise ValidationFailed(f"replicas must be between 0 and {MAX_REPLICAS}", param="replicas")
    if low is not None and high is not None and low > high:
        raise ValidationFailed("min_replicas must be <= max_replicas", param="min_replicas")
    if low is not None and replicas < low:
        raise ValidationFailed("replicas must be >= min_replicas", param="replicas")
    if high is not None and replicas > high:
        raise ValidationFailed("replicas must be <= max_replicas", param="replicas")
    if high is not None and high > MAX_REPLICAS:
        raise ValidationFailed(f"max_replicas must be <= {MAX_REPLICAS}", param="max_replicas")
    _validate_quantities(config)
    if config.target_utilization is not None and not 0 < config.target_utilization <= 1:
        raise ValidationFailed("target_utilization must be in (0, 1]", param="target_utilization")
    if (
        config.request_timeout_seconds is not None
        and not 0 < config.request_timeout_seconds <= 3600
    ):
        raise ValidationFailed(
            "request_timeout_seconds must be in (0, 3600]", param="request_timeout_seconds"
        )
    if config.visibility not in (None, "account", "keys"):
        raise ValidationFailed("visibility must be 'account' or 'keys'", param="visibility")


def _validate_quantities(config: EndpointConfig) -> None:
    cpu = {"cpu_request": config.cpu_request, "cpu_limit": config.cpu_limit}
    memory = {"memory_request": config.memory_request, "memory_limit": config.memory_limit}
    parsed: dict[str, float] = {}
    for name, value in cpu.items():
        if value is not None:
            try:
                parsed[name] = parse_cpu(value)
            except ValueError as exc:
                raise ValidationFailed(str(exc), param=name) from exc
    for name, value in memory.items():
        if value is not None:
            try:
                parsed[name] = parse_memory(value)
            except ValueError as exc:
                raise ValidationFailed(str(exc), param=name) from exc
    for kind in ("cpu", "memory"):
        request, limit = parsed.get(f"{kind}_request"), parsed.get(f"{kind}_limit")
        if request is not None and limit is not None and request > limit:
            raise ValidationFailed(
                f"{kind}_request must be <= {kind}_limit", param=f"{kind}_request"
            )


def _apply(endpoint: Endpoint, config: EndpointConfig) -> None:
    for field_name, value in vars(config).items():
        if value is not None:
            setattr(endpoint, field_name, value)


def create_endpoint(
    session: Session,
    *,
    account_id: str,
    name: str,
    model: str,
    version: str,
    config: EndpointConfig,
) -> Endpoint:
    if not ENDPOINT_NAME.fullmatch(name):
        raise ValidationFailed(
            "name must be lowercase letters, digits and '-', at most 63 characters", param="name"
        )
    validate_config(config)
    model_version = find_model_version(session, account_id, model, version)
    taken = session.scalar(
        select(Endpoint).where(
            Endpoint.account_id == account_id, Endpoint.name == name, Endpoint.deleted_at.is_(None)
        )
    )
    if taken is not None:
        raise Conflict(f"endpoint {name!r} already exists", param="name")
    _free_deleted_name(session, account_id, name)
    endpoint = Endpoint(
        id=new_id("ep"),
        account_id=account_id,
        name=name,
        model_id=model_version.model_id,
        status="pending",
        stable_version=version,
        runtime_options={},
        allowed_key_ids=[],
    )
    _apply(endpoint, config)
    endpoint.replicas = config.replicas if config.replicas is not None else 1
    session.add(endpoint)
    session.flush()
    _add_deployment(session, endpoint, model_version, weight=1.0, replicas=endpoint.replicas)
    return endpoint


def _free_deleted_name(session: Session, account_id: str, name: str) -> None:
    """A deleted endpoint keeps its row (for billing history) but releases its name."""
    for old in session.scalars(
        select(Endpoint).where(
            Endpoint.account_id == account_id,
            Endpoint.name == name,
            Endpoint.deleted_at.is_not(None),
        )
    ):
        old.name = f"{name[:40]}-deleted-{old.id[-8:]}"
    session.flush()


def _add_deployment(
    session: Session,
    endpoint: Endpoint,
    model_version: ModelVersion,
    *,
    weight: float,
    replicas: int,
) -> Deployment:
    deployment = Deployment(
        id=new_id("dep"),
        endpoint_id=endpoint.id,
        model_version_id=model_version.id,
        version=model_version.version,
        traffic_weight=weight,
        replicas=replicas,
    )
    session.add(deployment)
    session.flush()
    return deployment


def update_endpoint(session: Session, endpoint: Endpoint, config: EndpointConfig) -> Endpoint:
    validate_config(config, endpoint)
    _apply(endpoint, config)
    for deployment in active_deployments(session, endpoint):
        if config.replicas is not None and deployment.version == endpoint.stable_version:
            deployment.replicas = config.replicas
        # A changed endpoint is tried afresh: no back-off wait, and a "failed" one retries.
        deployment.failed_starts = 0
        deployment.next_start_at = None
    endpoint.generation += 1
    return endpoint


def delete_endpoint(session: Session, endpoint: Endpoint) -> None:
    now = datetime.now(UTC)
    endpoint.status = "deleting"
    endpoint.deleted_at = now
    for deployment in active_deployments(session, endpoint):
        deployment.removed_at = now


def create_canary(
    session: Session,
    endpoint: Endpoint,
    *,
    new_version: str,
    traffic_percentage: float,
    replicas: int | None = None,
) -> Deployment:
    deployments = active_deployments(session, endpoint)
    stable = endpoint.stable_version
    if stable is None or new_version == stable:
        raise ValidationFailed(
            "new_version must differ from the stable version", param="new_version"
        )
    others = [d for d in deployments if d.version not in (stable, new_version)]
    if others:
        raise Conflict(
            f"version {others[0].version} is also deployed; promote or roll back first",
            param="new_version",
        )
    model = session.get(Model, endpoint.model_id)
    assert model is not None
    weights = traffic.canary_weights(stable, new_version, traffic_percentage)
    canary = next((d for d in deployments if d.version == new_version), None)
    if canary is None:
        model_version = find_model_version(session, endpoint.account_id, model.name, new_version)
        canary = _add_deployment(
            session, endpoint, model_version, weight=0.0, replicas=replicas or 1
        )
        deployments.append(canary)
    elif replicas is not None:
        canary.replicas = replicas
    _set_weights(endpoint, deployments, weights)
    return canary


def set_traffic(session: Session, endpoint: Endpoint, version_traffic: Mapping[str, float]) -> None:
    weights = traffic.normalise_weights(version_traffic)
    deployments = active_deployments(session, endpoint)
    deployed = {d.version for d in deployments}
    missing = sorted(set(weights) - deployed)
    if missing:
        raise ValidationFailed(
            f"version {missing[0]!r} is not deployed on this endpoint"
            " (deploy it with a canary first)",
            param="version_traffic",
        )
    _set_weights(endpoint, deployments, weights)


def _set_weights(
    endpoint: Endpoint, deployments: list[Deployment], weights: Mapping[str, float]
) -> None:
    for deployment in deployments:
        deployment.traffic_weight = weights.get(deployment.version, 0.0)
    endpoint.stable_version, endpoint.previous_stable_version = traffic.next_stable(
        endpoint.stable_version, endpoint.previous_stable_version, weights
    )
    for deployment in deployments:
        # The version taking all traffic carries the endpoint's replica count.
        if deployment.version == endpoint.stable_version and deployment.traffic_weight > 0:
            deployment.replicas = max(deployment.replicas, endpoint.replicas)
    endpoint.generation += 1


def rollback(session: Session, endpoint: Endpoint, to_version: str | None) -> None:
    deployments = active_deployments(session, endpoint)
    target = traffic.rollback_target(
        endpoint.stable_version,
        endpoint.previous_stable_version,
        current_weights(deployments),
        to_version,
    )
    if target not in {d.version for d in deployments}:
        model = session.get(Model, endpoint.model_id)
        assert model is not None
        model_version = find_model_version(session, endpoint.account_id, model.name, target)
        deployments.append(
            _add_deployment(
                session, endpoint, model_version, weight=0.0, replicas=endpoint.replicas
            )
        )
    now = datetime.now(UTC)
    for deployment in deployments:
        if deployment.version == target:
            deployment.traffic_weight = 1.0
            deployment.replicas = max(deployment.replicas, endpoint.replicas)
        else:
            deployment.traffic_weight = 0.0
            deployment.removed_at = now
    endpoint.stable_version = target
    endpoint.previous_stable_version = None
    endpoint.generation += 1


def promote(session: Session, endpoint: Endpoint) -> None:
    """All traffic to the newest non-stable version; older deployments drain away."""
    deployments = active_deployments(session, endpoint)
    candidates = [d for d in deployments if d.version != endpoint.stable_version]
    if not candidates:
        raise ValidationFailed("there is no canary to promote", param="endpoint_id")
    target = candidates[-1]
    now = datetime.now(UTC)
    for deployment in deployments:
        deployment.traffic_weight = 1.0 if deployment is target else 0.0
        if deployment is not target:
            deployment.removed_at = now
    target.replicas = max(target.replicas, endpoint.replicas)
    endpoint.previous_stable_version = endpoint.stable_version
    endpoint.stable_version = target.version
    endpoint.generation += 1
