"""``/v1/library/models``: the account's model library (add by URL, list, get, delete)."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform
from regolo.server.api.schemas import ListResponse, Strict
from regolo.server.errors import Conflict, NotFound
from regolo.server.hub.download import resolve
from regolo.server.hub.inspect import inspect_model
from regolo.server.hub.safety import safe_join, validate_slug
from regolo.server.hub.sources import parse_model_source
from regolo.server.library import service
from regolo.server.library.service import facts_dict, find_model
from regolo.server.specs import Principal
from regolo.server.store.tables import Deployment, Model, ModelVersion

router = APIRouter(prefix="/v1/library/models", tags=["library"])


class ModelAdd(Strict):
    url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(default=None, max_length=100)
    version: str | None = Field(default=None, max_length=64)
    gguf_file: str | None = Field(default=None, max_length=300)
    trust_remote_code: bool = False


class Progress(BaseModel):
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


class ModelVersionOut(BaseModel):
    object: str = "model_version"
    id: str
    model: str
    version: str
    source: str
    revision: str | None
    commit_sha: str | None
    status: str
    status_reason: str | None
    progress: Progress
    facts: dict[str, Any] | None
    trust_remote_code: bool
    created_at: datetime


class ModelOut(BaseModel):
    object: str = "model"
    id: str
    name: str
    versions: list[ModelVersionOut]
    created_at: datetime


def version_out(model: Model, row: ModelVersion) -> dict[str, Any]:
    return ModelVersionOut(
        id=row.id,
        model=model.name,
        version=row.version,
        source=row.source_uri,
        revision=row.revision,
        commit_sha=row.commit_sha,
        status=row.status,
        status_reason=row.status_reason,
        progress=Progress(
            bytes_done=row.bytes_done,
            bytes_total=row.bytes_total,
            files_done=row.files_done,
            files_total=row.files_total,
        ),
        facts=row.facts,
        trust_remote_code=row.trust_remote_code,
        created_at=row.created_at,
    ).model_dump(mode="json")


def model_out(session: Session, model: Model) -> dict[str, Any]:
    versions = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.created_at)
    ).all()
    return ModelOut(
        id=model.id,
        name=model.name,
        versions=[ModelVersionOut.model_validate(version_out(model, v)) for v in versions],
        created_at=model.created_at,
    ).model_dump(mode="json")


def _default_name(display_name: str) -> str:
    name = re.sub(r"[^a-z0-9.-]+", "-", display_name.rsplit("/", 1)[-1].lower()).strip("-.")
    return name.removesuffix(".gguf") or "model"


@router.post("", status_code=201, response_model=ModelVersionOut)
def add_model(
    body: ModelAdd, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    services = platform(request)
    settings = services.settings
    source = parse_model_source(
        body.url, hf_endpoint=settings.hf_endpoint, allowed_local_roots=settings.allowed_local_roots
    )
    name = validate_slug(body.name or _default_name(source.display_name), param="name")
    version = validate_slug(body.version or "1.0", param="version")
    if source.kind == "local":
        assert source.local_path is not None
        facts = inspect_model(source.local_path)
        with services.db.write() as session:
            row = service.new_version(
                session,
                account_id=caller.account_id,
                name=name,
                version=version,
                source_kind="local",
                source_uri=source.uri,
                local_path=str(source.local_path),
                status="ready",
                facts=facts_dict(facts),
                bytes_done=facts.size_bytes,
                bytes_total=facts.size_bytes,
                trust_remote_code=body.trust_remote_code,
            )
            return version_out(find_model(session, caller.account_id, name), row)
    resolved = resolve(
        source,
        token=settings.hf_token,
        hf_endpoint=settings.hf_endpoint,
        gguf_file=body.gguf_file,
        cdn_hosts=settings.hf_allowed_redirect_hosts,
    )
    dest = safe_join(settings.models_dir, caller.account_id, name, version)
    with services.db.write() as session:
        row = service.new_version(
            session,
            account_id=caller.account_id,
            name=name,
            version=version,
            source_kind="hf",
            source_uri=source.uri,
            repo_id=source.repo_id,
            revision=source.revision,
            commit_sha=resolved.commit_sha,
            local_path=str(dest),
            status="downloading",
            bytes_total=resolved.total_bytes,
            files_total=len(resolved.chosen),
            trust_remote_code=body.trust_remote_code,
        )
        out = version_out(find_model(session, caller.account_id, name), row)
    services.downloader.start(row.id, resolved, dest)
    return out


@router.get("", response_model=ListResponse[ModelOut])
def list_models(
    request: Request,
    caller: Principal = Depends(admin),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        models = session.scalars(
            select(Model)
            .where(Model.account_id == caller.account_id)
            .order_by(Model.created_at)
            .limit(limit)
        ).all()
        return {"object": "list", "data": [model_out(session, m) for m in models]}


@router.get("/{name}", response_model=ModelOut)
def get_model(name: str, request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        return model_out(session, find_model(session, caller.account_id, name))


@router.get("/{name}/versions/{version}", response_model=ModelVersionOut)
def get_version(
    name: str, version: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        model = find_model(session, caller.account_id, name)
        return version_out(model, _find_version(session, model, version))


def _find_version(session: Session, model: Model, version: str) -> ModelVersion:
    row = session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version!r}", param="version")
    return row


@router.delete("/{name}", status_code=204)
def delete_model(
    name: str, request: Request, caller: Principal = Depends(admin), version: str | None = None
) -> Response:
    services = platform(request)
    with services.db.write() as session:
        model = find_model(session, caller.account_id, name)
        rows = (
            [_find_version(session, model, version)]
            if version
            else list(
                session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id))
            )
        )
        for row in rows:
            in_use = session.scalar(
                select(Deployment.id)
                .where(Deployment.model_version_id == row.id, Deployment.removed_at.is_(None))
                .limit(1)
            )
            if in_use:
                raise Conflict(
                    f"{name}:{row.version} is deployed; delete its endpoints first", param="name"
                )
        owned_dirs = [Path(r.local_path) for r in rows if r.source_kind == "hf" and r.local_path]
        for row in rows:
            session.delete(row)
        session.flush()
        if not version or not session.scalar(
            select(ModelVersion.id).where(ModelVersion.model_id == model.id)
        ):
            session.delete(model)
    for directory in owned_dirs:
        if directory.is_relative_to(services.settings.models_dir):
            shutil.rmtree(directory, ignore_errors=True)
    return Response(status_code=204)
