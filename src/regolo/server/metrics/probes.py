"""The health checker's observer: turns each tick's probes into availability ticks and
CPU/memory samples in the metric buckets.

Written on the health checker's own tick (the controller thread), one transaction per
tick: a few rows per deployment, never on the request path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.control.health import ProbeSample
from regolo.server.metrics.availability import deployment_up
from regolo.server.metrics.bucket_store import add_to_buckets
from regolo.server.metrics.rollup import BucketKey, keys_for
from regolo.server.metrics.stats import BucketStats
from regolo.server.quantities import parse_cpu, parse_memory
from regolo.server.store.database import Database
from regolo.server.store.tables import Deployment, Endpoint, Replica

log = logging.getLogger("regolo.metrics")

DEFAULT_CPU_REQUEST_CORES = 1.0


class ProbeRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, at: datetime, samples: list[ProbeSample]) -> None:
        with self.db.write() as session:
            deltas = tick_deltas(session, at, samples)
            add_to_buckets(session, deltas)


def tick_deltas(
    session: Session, at: datetime, samples: list[ProbeSample]
) -> dict[BucketKey, BucketStats]:
    """One tick's increments: a probe tick per deployment meant to be up, and a resource
    sample per replica the backend measured."""
    deployments = _deployments_meant_up(session)
    deployment_of = _deployment_of(session, [s.target.replica_id for s in samples])
    results: dict[str, list[bool]] = defaultdict(list)
    deltas: dict[BucketKey, BucketStats] = {}
    for sample in samples:
        deployment_id = deployment_of.get(sample.target.replica_id)
        if deployment_id is None:
            continue
        results[deployment_id].append(sample.result.ok)
        found = deployments.get(deployment_id) or _deployment(session, deployment_id)
        if found is None or sample.observed is None:
            continue
        deployment, endpoint = found
        for key in keys_for(endpoint.id, deployment.version, at):
            deltas.setdefault(key, BucketStats()).add_resources(
                sample.observed.cpu_cores_used,
                _cores(endpoint.cpu_request),
                sample.observed.memory_bytes,
                _bytes(endpoint.memory_request),
            )
    for deployment_id, (deployment, endpoint) in deployments.items():
        up = deployment_up(results.get(deployment_id, []))
        for key in keys_for(endpoint.id, deployment.version, at):
            deltas.setdefault(key, BucketStats()).add_probe_tick(up)
    return deltas


def _deployments_meant_up(session: Session) -> dict[str, tuple[Deployment, Endpoint]]:
    """Deployments that want replicas and were ready once (a first start is no outage)."""
    rows = session.execute(
        select(Deployment, Endpoint)
        .join(Endpoint, Deployment.endpoint_id == Endpoint.id)
        .where(
            Endpoint.deleted_at.is_(None),
            Deployment.removed_at.is_(None),
            Deployment.replicas > 0,
            Deployment.ever_ready.is_(True),
        )
    ).all()
    return {deployment.id: (deployment, endpoint) for deployment, endpoint in rows}


def _deployment(session: Session, deployment_id: str) -> tuple[Deployment, Endpoint] | None:
    deployment = session.get(Deployment, deployment_id)
    endpoint = session.get(Endpoint, deployment.endpoint_id) if deployment else None
    return (deployment, endpoint) if deployment and endpoint else None


def _deployment_of(session: Session, replica_ids: list[str]) -> dict[str, str]:
    if not replica_ids:
        return {}
    rows = session.execute(
        select(Replica.id, Replica.deployment_id).where(Replica.id.in_(replica_ids))
    ).all()
    return {replica_id: deployment_id for replica_id, deployment_id in rows}


def _cores(quantity: str | None) -> float:
    try:
        return parse_cpu(quantity) if quantity else DEFAULT_CPU_REQUEST_CORES
    except ValueError:
        return DEFAULT_CPU_REQUEST_CORES


def _bytes(quantity: str | None) -> int | None:
    try:
        return parse_memory(quantity) if quantity else None
    except ValueError:
        return None
