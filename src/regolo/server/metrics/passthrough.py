"""Replica runtimes' own Prometheus metrics (vLLM's ``vllm:*``), passed through with the
endpoint, version and replica they came from as extra labels.

Scraped when the page is asked for, with a short timeout per replica: a slow or dead
replica costs its samples, never the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.store.tables import Deployment, Endpoint, Replica

log = logging.getLogger("regolo.metrics")

PASSTHROUGH_PREFIXES = ("vllm:",)
SCRAPE_TIMEOUT_SECONDS = 2.0
RUNTIMES_WITH_METRICS = ("vllm",)


@dataclass(frozen=True)
class ScrapeTarget:
    account_id: str
    endpoint: str
    version: str
    replica_id: str
    address: str
    token: str


def scrape_targets(session: Session, endpoint_ids: Iterable[str]) -> list[ScrapeTarget]:
    rows = session.execute(
        select(Replica, Deployment, Endpoint)
        .join(Deployment, Replica.deployment_id == Deployment.id)
        .join(Endpoint, Deployment.endpoint_id == Endpoint.id)
        .where(
            Endpoint.id.in_(list(endpoint_ids)),
            Replica.state == "ready",
            Replica.stopped_at.is_(None),
            Replica.address.is_not(None),
            Replica.runtime.in_(RUNTIMES_WITH_METRICS),
        )
    ).all()
    return [
        ScrapeTarget(e.account_id, e.name, d.version, r.id, r.address or "", r.auth_token)
        for r, d, e in rows
    ]


def scrape(targets: list[ScrapeTarget]) -> list[Metric]:
    """Every passed-through family, one per name, samples of all replicas merged."""
    merged: dict[str, Metric] = {}
    with httpx.Client(timeout=SCRAPE_TIMEOUT_SECONDS) as client:
        for target in targets:
            for family in _families_of(client, target):
                found = merged.get(family.name)
                if found is None:
                    found = merged[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                found.samples.extend(family.samples)
    return list(merged.values())


def _families_of(client: httpx.Client, target: ScrapeTarget) -> Iterator[Metric]:
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        response = client.get(f"{target.address}/metrics", headers=headers)
        response.raise_for_status()
        families = list(text_string_to_metric_families(response.text))
    except (httpx.HTTPError, ValueError) as exc:
        log.info("no runtime metrics from replica %s: %s", target.replica_id, type(exc).__name__)
        return
    extra = {
        "account": target.account_id,
        "endpoint": target.endpoint,
        "version": target.version,
        "replica": target.replica_id,
    }
    for family in families:
        if not family.name.startswith(PASSTHROUGH_PREFIXES):
            continue
        relabelled = Metric(family.name, family.documentation, family.type)
        for sample in family.samples:
            relabelled.add_sample(
                sample.name, {**sample.labels, **extra}, sample.value, sample.timestamp
            )
        yield relabelled
