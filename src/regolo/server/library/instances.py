"""Sizing checks for deploys: does the chosen instance type exist, and does the model fit it?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from regolo.server.errors import NotFound, ValidationFailed
from regolo.server.hub.inspect import ModelFacts
from regolo.server.hub.sizing import InstanceFit, recommend
from regolo.server.store.tables import Model, ModelVersion

if TYPE_CHECKING:
    from regolo.server.platform import Platform


def facts_of(version: ModelVersion) -> ModelFacts | None:
    if not version.facts:
        return None
    known = ModelFacts.__dataclass_fields__
    return ModelFacts(**{k: v for k, v in version.facts.items() if k in known})


def fits_for(platform: Platform, facts: ModelFacts, **options: Any) -> list[InstanceFit]:
    return recommend(facts, platform.catalog, **options)


def check_instance_fits(
    platform: Platform, instance_type: str, model: str, version: str, account_id: str
) -> None:
    try:
        platform.catalog.get(instance_type)
    except NotFound as exc:
        raise ValidationFailed(
            f"unknown instance type {instance_type!r}; see GET /v1/instances", param="instance_type"
        ) from exc
    with platform.db.read() as session:
        row = session.scalar(
            select(ModelVersion)
            .join(Model)
            .where(
                Model.account_id == account_id, Model.name == model, ModelVersion.version == version
            )
        )
    facts = facts_of(row) if row is not None else None
    if facts is None:
        return  # unknown model is reported by the endpoint service; facts come after download
    fit = next(f for f in fits_for(platform, facts) if f.instance_type == instance_type)
    if not fit.fits:
        raise ValidationFailed(
            f"{model}:{version} does not fit {instance_type}: {fit.reason}", param="instance_type"
        )
