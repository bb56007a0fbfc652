"""``/v1/billing``: balance, top-ups, usage, invoices (JSON, HTML, PDF) and estimates.

Everything is about the caller's own account (admin keys). Top-ups are an operator
action: only the platform's superadmin key may credit an account, any account, named by
``account_id`` (id or name; default its own).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from regolo.server.api.deps import admin, platform, superadmin
from regolo.server.api.idempotency import idempotency_key
from regolo.server.api.schemas import Strict
from regolo.server.billing import accounts, invoices, usage
from regolo.server.billing.catalog import Catalog
from regolo.server.billing.config import billing_config
from regolo.server.billing.estimate import EstimateRequest, estimate, library_fit
from regolo.server.billing.hours import month_of, parse_month
from regolo.server.billing.invoice_html import render_invoice_html
from regolo.server.billing.invoice_pdf import render_invoice_pdf
from regolo.server.errors import NotFound, Unavailable, ValidationFailed
from regolo.server.specs import Principal
from regolo.server.store.tables import Account

router = APIRouter(prefix="/v1/billing", tags=["billing"])

INVOICE_ID = re.compile(r"[a-z0-9_]{1,40}")


class TopUpCreate(Strict):
    amount: Decimal = Field(gt=0, le=1_000_000, max_digits=13, decimal_places=6)
    account_id: str | None = Field(default=None, min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=500)


def _now() -> datetime:
    return datetime.now(UTC)


def _catalog(request: Request) -> Catalog:
    catalog = platform(request).catalog
    if catalog is None:
        raise Unavailable("the price book is not loaded")
    return catalog  # type: ignore[no-any-return]


@router.get("/balance")
def get_balance(request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    config = billing_config(platform(request).settings)

    def read(session: Session) -> dict[str, Any]:
        return accounts.balance_view(session, caller.account_id, config, _now())

    return _write(request, read)


def _write(request: Request, step: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
    """One write transaction, tried twice: the first use of an account's billing may race
    the meter opening it (a unique-key conflict); the second try finds it open."""
    try:
        with platform(request).db.write() as session:
            return step(session)
    except IntegrityError:
        with platform(request).db.write() as session:
            return step(session)


@router.post("/topups", status_code=201)
def create_topup(
    body: TopUpCreate, request: Request, caller: Principal = Depends(superadmin)
) -> dict[str, Any]:
    config = billing_config(platform(request).settings)
    key = idempotency_key(request)

    def credit(session: Session) -> dict[str, Any]:
        account_id = _account_id(session, body.account_id or caller.account_id)
        wanted = accounts.TopUp(
            account_id=account_id,
            amount=body.amount,
            idempotency_key=key,
            created_by_key_id=caller.key_id,
            note=body.note,
        )
        return accounts.top_up(session, wanted, config, _now())

    result = _write(request, credit)
    if result["resumed"]:
        platform(request).notify_desired_state_changed()
    return result


def _account_id(session: Session, id_or_name: str) -> str:
    found = session.scalar(
        select(Account.id).where(or_(Account.id == id_or_name, Account.name == id_or_name))
    )
    if found is None:
        raise NotFound(f"no account {id_or_name!r}", param="account_id")
    return str(found)


@router.get(
    "/usage",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def get_usage(
    request: Request,
    month: str | None = Query(default=None, max_length=7),
    output: str = Query(default="json", alias="format", pattern="^(json|csv)$"),
    caller: Principal = Depends(admin),
) -> dict[str, Any] | Response:
    month = _month(month)
    with platform(request).db.read() as session:
        if output == "csv":
            text = usage.usage_csv(session, caller.account_id, month)
            return Response(
                text,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="usage-{month}.csv"'},
            )
        return usage.usage_json(session, caller.account_id, month)


def _month(month: str | None) -> str:
    if month is None:
        return month_of(_now())
    try:
        parse_month(month)
    except ValueError as exc:
        raise ValidationFailed("month must look like 2026-01", param="month") from exc
    return month


@router.get("/invoices")
def list_invoices(request: Request, caller: Principal = Depends(admin)) -> dict[str, Any]:
    with platform(request).db.read() as session:
        return {"object": "list", "data": invoices.list_all(session, caller.account_id, _now())}


@router.get("/invoices/{invoice_id}.html", response_class=HTMLResponse)
def invoice_html(invoice_id: str, request: Request, caller: Principal = Depends(admin)) -> str:
    return render_invoice_html(_invoice(request, caller, invoice_id))


@router.get("/invoices/{invoice_id}.pdf", response_class=Response)
def invoice_pdf(invoice_id: str, request: Request, caller: Principal = Depends(admin)) -> Response:
    document = _invoice(request, caller, invoice_id)
    filename = f"invoice-{document['month']}-{document['id']}.pdf"
    return Response(
        render_invoice_pdf(document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/invoices/{invoice_id}")
def get_invoice(
    invoice_id: str, request: Request, caller: Principal = Depends(admin)
) -> dict[str, Any]:
    return _invoice(request, caller, invoice_id)


def _invoice(request: Request, caller: Principal, invoice_id: str) -> dict[str, Any]:
    if not INVOICE_ID.fullmatch(invoice_id):
        raise NotFound(f"no invoice {invoice_id[:40]!r}", param="invoice_id")
    with platform(request).db.read() as session:
        return invoices.get(session, caller.account_id, invoice_id, _now())


@router.get("/estimate")
def get_estimate(
    request: Request,
    model: str | None = Query(default=None, max_length=200),
    version: str | None = Query(default=None, max_length=64),
    instance_type: str | None = Query(default=None, max_length=64),
    replicas: int | None = Query(default=None, ge=0, le=100),
    min_replicas: int | None = Query(default=None, ge=0, le=100),
    max_replicas: int | None = Query(default=None, ge=0, le=100),
    hours_per_month: int | None = Query(default=None, ge=1, le=744),
    caller: Principal = Depends(admin),
) -> dict[str, Any]:
    catalog = _catalog(request)
    wanted = EstimateRequest(
        model=model,
        version=version,
        instance_type=instance_type,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        hours_per_month=hours_per_month,
    )
    with platform(request).db.read() as session:
        fit = library_fit(session, catalog, caller.account_id, wanted)
    return estimate(catalog, wanted, fit)
