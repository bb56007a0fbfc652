"""Cost estimates: an instance type's hourly price times replicas times hours.

With an autoscaling range the estimate is a min-max. When the model is in the caller's
library with inspected facts, the estimate also says whether it fits the instance type,
and without an instance type it picks the cheapest one that fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.billing.catalog import Catalog
from regolo.server.billing.money import money_text
from regolo.server.errors import ValidationFailed
from regolo.server.store.tables import Model, ModelVersion

MAX_HOURS_PER_MONTH = 744  # 31 days


@dataclass(frozen=True, kw_only=True)
class EstimateRequest:
    model: str | None = None
    version: str | None = None
    instance_type: str | None = None
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    hours_per_month: int | None = None


@dataclass(frozen=True, kw_only=True)
class Fit:
    instance_type: str
    fits: bool
    reason: str


def replica_range(request: EstimateRequest) -> tuple[int, int, int]:
    """(replicas, low, high), checked: low <= replicas <= high, all within 0-100."""
    low = request.min_replicas
    high = request.max_replicas
    replicas = request.replicas if request.replicas is not None else (low if low else 1)
    low = replicas if low is None else low
    high = max(replicas, low) if high is None else high
    for name, value in (("replicas", replicas), ("min_replicas", low), ("max_replicas", high)):
        if not 0 <= value <= 100:
            raise ValidationFailed(f"{name} must be between 0 and 100", param=name)
    if not low <= replicas <= high:
        raise ValidationFailed(
            "min_replicas <= replicas <= max_replicas must hold", param="replicas"
        )
    return replicas, low, high


def estimate(catalog: Catalog, request: EstimateRequest, fit: Fit | None = None) -> dict[str, Any]:
    instance_type = request.instance_type or (fit.instance_type if fit else None)
    if instance_type is None:
        raise ValidationFailed(
            "instance_type is required unless the model is in your library", param="instance_type"
        )
    instance = catalog.get(instance_type)
    hours = request.hours_per_month or catalog.hours_per_month
    if not 1 <= hours <= MAX_HOURS_PER_MONTH:
        raise ValidationFailed(
            f"hours_per_month must be between 1 and {MAX_HOURS_PER_MONTH}", param="hours_per_month"
        )
    replicas, low, high = replica_range(request)
    price = instance.price_per_hour
    return {
        "object": "billing.estimate",
        "model": request.model,
        "version": request.version,
        "instance_type": instance.id,
        "currency": instance.currency,
        "price_book_version": catalog.version,
        "price_per_hour": money_text(price),
        "replicas": replicas,
        "min_replicas": low,
        "max_replicas": high,
        "hours_per_month": hours,
        "cost_per_hour": money_text(price * replicas),
        "cost_per_month": money_text(price * replicas * hours),
        "cost_per_month_min": money_text(price * low * hours),
        "cost_per_month_max": money_text(price * high * hours),
        "fits": fit.fits if fit else None,
        "fit_reason": fit.reason if fit else None,
    }


def library_fit(
    session: Session, catalog: Catalog, account_id: str, request: EstimateRequest
) -> Fit | None:
    """How the library's model fits (the requested type, or the cheapest that fits)."""
    if request.model is None:
        return None
    query = (
        select(ModelVersion)
        .join(Model)
        .where(Model.account_id == account_id, Model.name == request.model)
        .order_by(ModelVersion.created_at.desc())
    )
    if request.version is not None:
        query = query.where(ModelVersion.version == request.version)
    version = session.scalars(query).first()
    if version is None or not version.facts:
        return None
    from regolo.server.hub.inspect import ModelFacts
    from regolo.server.hub.sizing import recommend

    try:
        fits = recommend(ModelFacts(**version.facts), catalog)
    except (TypeError, ValueError):
        return None
    chosen = [f for f in fits if f.instance_type == request.instance_type] or fits[:1]
    if not chosen:
        return None
    return Fit(instance_type=chosen[0].instance_type, fits=chosen[0].fits, reason=chosen[0].reason)
