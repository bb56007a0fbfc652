"""Model library rows: models and their versions, inside one account."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.errors import Conflict, NotFound
from regolo.server.hub.inspect import ModelFacts, inspect_model
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Model, ModelVersion


def facts_dict(facts: ModelFacts) -> dict[str, Any]:
    return dataclasses.asdict(facts)


def find_model(session: Session, account_id: str, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.account_id == account_id, Model.name == name))
    if model is None:
        raise NotFound(f"no model {name!r} in your library", param="model")
    return model


def model_for(session: Session, account_id: str, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.account_id == account_id, Model.name == name))
    if model is None:
        model = Model(id=new_id("mdl"), account_id=account_id, name=name)
        session.add(model)
        session.flush()
    return model


def new_version(
    session: Session,
    *,
    account_id: str,
    name: str,
    version: str,
    source_kind: str,
    source_uri: str,
    **fields: Any,
) -> ModelVersion:
    model = model_for(session, account_id, name)
    taken = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if taken is not None:
        raise Conflict(f"model {name!r} already has version {version!r}", param="version")
    row = ModelVersion(
        id=new_id("mv"),
        model_id=model.id,
        version=version,
        source_kind=source_kind,
        source_uri=source_uri,
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def add_local_version(
    session: Session, *, account_id: str, name: str, version: str, path: Path
) -> ModelVersion:
    """A model already on this machine: inspected now, ready at once."""
    facts = inspect_model(path)
    size = facts.size_bytes
    return new_version(
        session,
        account_id=account_id,
        name=name,
        version=version,
        source_kind="local",
        source_uri=str(path),
        local_path=str(path),
        status="ready",
        facts=facts_dict(facts),
        bytes_done=size,
        bytes_total=size,
        files_done=1,
        files_total=1,
    )
