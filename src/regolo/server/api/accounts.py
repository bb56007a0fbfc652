"""``/v1/accounts``: tenants, managed by the platform's superadmin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from regolo.server.accounts import create_account
from regolo.server.api.deps import admin, platform, superadmin
from regolo.server.api.schemas import ListResponse, Strict
from regolo.server.errors import Conflict
from regolo.server.specs import Principal
from regolo.server.store.tables import Account

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


class AccountCreate(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    object: str = "account"
    id: str
    name: str
    created_at: datetime


class CreatedAccountOut(AccountOut):
    admin_key: str


@router.post("", status_code=201, response_model=CreatedAccountOut)
def create(
    body: AccountCreate, request: Request, _: Principal = Depends(superadmin)
) -> dict[str, Any]:
    try:
        with platform(request).db.write() as session:
            account, raw_key = create_account(session, body.name)
            out = AccountOut.model_validate(account).model_dump(mode="json")
    except IntegrityError as exc:
        raise Conflict(f"account {body.name!r} exists", param="name") from exc
    return {**out, "admin_key": raw_key}


@router.get("", response_model=ListResponse[AccountOut])
def list_accounts(request: Request, _: Principal = Depends(superadmin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        rows = session.scalars(select(Account).order_by(Account.created_at)).all()
        return {
            "object": "list",
            "data": [AccountOut.model_validate(r).model_dump(mode="json") for r in rows],
        }


@router.get("/me", response_model=AccountOut)
def me(request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        row = session.get(Account, caller.account_id)
        return AccountOut.model_validate(row).model_dump(mode="json")
