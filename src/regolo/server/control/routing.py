"""Builds the gateway's routing table from the store."""

from __future__ import annotations

from sqlalchemy import select

from regolo.server.endpoints.traffic import routable_weights
from regolo.server.gateway.routing_table import (
    RouteDeployment,
    RouteEndpoint,
    RouteReplica,
    RoutingTable,
)
from regolo.server.store.database import Database
from regolo.server.store.tables import Deployment, Endpoint, Model, Replica

DEFAULT_QUEUE = 256
DEFAULT_MAX_CONCURRENCY = 64
DEFAULT_QUEUE_TIMEOUT_SECONDS = 30.0


def build_routing_table(db: Database) -> RoutingTable:
    with db.read() as session:
        endpoints = session.execute(
            select(Endpoint, Model).join(Model).where(Endpoint.deleted_at.is_(None))
        ).all()
        deployments = session.scalars(
            select(Deployment).where(Deployment.removed_at.is_(None))
        ).all()
        ready = session.scalars(
            select(Replica).where(Replica.state == "ready", Replica.stopped_at.is_(None))
        ).all()
    replicas_by_deployment: dict[str, list[RouteReplica]] = {}
    for replica in ready:
        if replica.address:
            replicas_by_deployment.setdefault(replica.deployment_id, []).append(
                RouteReplica(
                    replica_id=replica.id, address=replica.address, auth_token=replica.auth_token
                )
            )
    deployments_by_endpoint: dict[str, list[Deployment]] = {}
    for deployment in deployments:
        deployments_by_endpoint.setdefault(deployment.endpoint_id, []).append(deployment)
    routes = []
    for endpoint, model in endpoints:
        own = deployments_by_endpoint.get(endpoint.id, [])
        weights = routable_weights(
            {d.version: d.traffic_weight for d in own},
            {d.version: len(replicas_by_deployment.get(d.id, ())) for d in own},
            endpoint.stable_version,
        )
        routes.append(
            RouteEndpoint(
                endpoint_id=endpoint.id,
                name=endpoint.name,
                account_id=endpoint.account_id,
                model_name=model.name,
                deployments=tuple(
                    RouteDeployment(
                        deployment_id=d.id,
                        version=d.version,
                        traffic_weight=weights[d.version],
                        served_model_name=model.name,
                        replicas=tuple(replicas_by_deployment[d.id]),
                    )
                    for d in own
                    if d.version in weights
                ),
                request_timeout_seconds=endpoint.request_timeout_seconds,
                enable_cache=endpoint.enable_cache,
                enable_compression=endpoint.enable_compression,
                max_concurrency=endpoint.max_concurrency or DEFAULT_MAX_CONCURRENCY,
                max_queue=DEFAULT_QUEUE,
                queue_timeout_seconds=DEFAULT_QUEUE_TIMEOUT_SECONDS,
                allowed_key_ids=frozenset(endpoint.allowed_key_ids)
                if endpoint.visibility == "keys"
                else None,
            )
        )
    return RoutingTable(endpoints=tuple(routes))
