"""``/v1/instances`` (the price book) and per-model instance recommendations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from regolo.server.api.deps import admin, platform
from regolo.server.api.schemas import ListResponse
from regolo.server.billing.catalog import available_instances
from regolo.server.errors import NotFound
from regolo.server.library.instances import facts_of, fits_for
from regolo.server.library.service import find_model
from regolo.server.specs import Principal
from regolo.server.store.tables import ModelVersion

router = APIRouter(tags=["instances"])


class InstanceTypeOut(BaseModel):
    object: str = "instance_type"
    id: str
    accelerator: str
    gpu_count: int
    gpu_memory_gb: int
    vcpu: int
    ram_gb: int
    price_per_hour: Decimal
    price_per_month: Decimal
    currency: str
    price_book_version: str
    available: bool


class InstanceFitOut(BaseModel):
    object: str = "instance_fit"
    instance_type: str
    fits: bool
    reason: str
    gpus: int
    price_per_hour: Decimal
    price_per_month: Decimal
    currency: str
    estimated_tokens_per_second: float | None


@router.get("/v1/instances", response_model=ListResponse[InstanceTypeOut])
def list_instances(request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    services = platform(request)
    catalog = services.catalog
    backend = services.backend
    here = {i.id for i in available_instances(catalog, backend.capacity(), backend=backend.name)}
    data = [
        InstanceTypeOut(
            id=i.id,
            accelerator=i.accelerator,
            gpu_count=i.gpu_count,
            gpu_memory_gb=i.gpu_memory_gb,
            vcpu=i.vcpu,
            ram_gb=i.ram_gb,
            price_per_hour=i.price_per_hour,
            price_per_month=catalog.price_per_month(i),
            currency=i.currency,
            price_book_version=catalog.version,
            available=i.id in here,
        ).model_dump(mode="json")
        for i in catalog.instance_types
    ]
    return {"object": "list", "data": data}


@router.get(
    "/v1/library/models/{name}/versions/{version}/instances",
    response_model=ListResponse[InstanceFitOut],
)
def recommend_instances(
    name: str,
    version: str,
    request: Request,
    caller: Principal = Depends(admin),
    concurrency: int = Query(default=1, ge=1, le=1024),
    context_length: int | None = Query(default=None, ge=1, le=10_000_000),
) -> dict[str, Any]:
    services = platform(request)
    with services.db.read() as session:
        model = find_model(session, caller.account_id, name)
        row = next(
            (
                v
                for v in session.query(ModelVersion).filter_by(model_id=model.id)
                if v.version == version
            ),
            None,
        )
    if row is None:
        raise NotFound(f"model {name!r} has no version {version!r}", param="version")
    facts = facts_of(row)
    if facts is None:
        raise NotFound(
            f"{name}:{version} has not been inspected yet ({row.status})", param="version"
        )
    fits = fits_for(services, facts, concurrency=concurrency, context_length=context_length)
    data = [
        InstanceFitOut(
            instance_type=f.instance_type,
            fits=f.fits,
            reason=f.reason,
            gpus=f.gpus_used,
            price_per_hour=f.price_per_hour,
            price_per_month=f.price_per_month,
            currency=f.currency,
            estimated_tokens_per_second=f.estimated_decode_tokens_per_s,
        ).model_dump(mode="json")
        for f in fits
    ]
    return {"object": "list", "data": data}
