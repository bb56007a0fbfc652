"""``/v1/keys``: create (shown once), list, get, revoke."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform
from regolo.server.api.idempotency import idempotency_key, run_once
from regolo.server.api.schemas import ListResponse, Strict
from regolo.server.errors import NotFound, ValidationFailed
from regolo.server.keys import check_grantable, mint_key, validate_scopes
from regolo.server.specs import Principal
from regolo.server.store.tables import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["inference:*"], max_length=50)
    expires_at: datetime | None = None
    expires_in_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    rate_limit_rpm: int | None = Field(default=None, gt=0, le=10_000_000)
    rate_limit_tpm: int | None = Field(default=None, gt=0, le=1_000_000_000)


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    object: str = "api_key"
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None


class CreatedKeyOut(KeyOut):
    key: str | None = Field(description="the secret; shown only in the response that created it")


def key_out(row: ApiKey) -> dict[str, Any]:
    return KeyOut.model_validate(row).model_dump(mode="json")


def _expiry(body: KeyCreate) -> datetime | None:
    if body.expires_at is not None and body.expires_in_seconds is not None:
        raise ValidationFailed(
            "give expires_at or expires_in_seconds, not both", param="expires_at"
        )
    if body.expires_in_seconds is not None:
        return datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None:
            raise ValidationFailed("expires_at needs a timezone", param="expires_at")
        if body.expires_at <= datetime.now(UTC):
            raise ValidationFailed("expires_at is in the past", param="expires_at")
    return body.expires_at


@router.post("", status_code=201, response_model=CreatedKeyOut)
def create_key(
    body: KeyCreate, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    scopes = validate_scopes(body.scopes)
    check_grantable(caller, scopes)
    expires_at = _expiry(body)

    def create(session: Session) -> dict[str, Any]:
        minted = mint_key()
        row = ApiKey(
            id=minted.key_id,
            account_id=caller.account_id,
            name=body.name,
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=scopes,
            expires_at=expires_at,
            rate_limit_rpm=body.rate_limit_rpm,
            rate_limit_tpm=body.rate_limit_tpm,
            created_by_key_id=caller.key_id,
        )
        session.add(row)
        session.flush()
        return {**key_out(row), "key": minted.raw}

    return run_once(
        platform(request).db,
        account_id=caller.account_id,
        key=idempotency_key(request),
        request=request,
        create=create,
        # The secret is never stored: a replay returns the key without it.
        stored_body=lambda created: {**created, "key": None},
    )


@router.get("", response_model=ListResponse[KeyOut])
def list_keys(
    request: Request,
    caller: Principal = Depends(admin),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    with platform(request).db.read() as session:
        rows = session.scalars(
            select(ApiKey)
            .where(ApiKey.account_id == caller.account_id)
            .order_by(ApiKey.created_at)
            .limit(limit)
        ).all()
        return {"object": "list", "data": [key_out(row) for row in rows]}


def _own_key(session: Session, caller: Principal, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != caller.account_id:
        raise NotFound(f"no key {key_id!r}", param="key_id")
    return row


@router.get("/{key_id}", response_model=KeyOut)
def get_key(key_id: str, request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        return key_out(_own_key(session, caller, key_id))


@router.delete("/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    services = platform(request)
    with services.db.write() as session:
        row = _own_key(session, caller, key_id)
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        body = key_out(row)
    services.authenticator.forget(key_id)
    return body
