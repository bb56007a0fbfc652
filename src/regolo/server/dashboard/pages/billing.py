"""Billing: balance, this month's usage, invoices (HTML to view, PDF to download)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page
from regolo.server.dashboard.security import INVOICE_CSP


@page
async def billing(current: Page) -> Response:
    balance = await current.get("/v1/billing/balance")
    usage = await current.get("/v1/billing/usage")
    invoices = await current.get("/v1/billing/invoices")
    return current.render(
        "billing.html",
        nav="billing",
        available=balance.status_code != 404,
        balance=balance.json() if balance.ok else None,
        usage=usage.json() if usage.ok else None,
        invoices=invoices.json()["data"] if invoices.ok else [],
        error=None if balance.ok else balance.error_message(),
    )


@page
async def invoice_html(current: Page, invoice_id: str) -> Response:
    result = await current.get(f"/v1/billing/invoices/{invoice_id}.html")
    if not result.ok:
        return current.api_error(result)
    return Response(
        result.body, media_type="text/html", headers={"content-security-policy": INVOICE_CSP}
    )


@page
async def invoice_pdf(current: Page, invoice_id: str) -> Response:
    result = await current.get(f"/v1/billing/invoices/{invoice_id}.pdf")
    if not result.ok:
        return current.api_error(result)
    disposition = result.headers.get(
        "content-disposition", f'attachment; filename="{invoice_id}.pdf"'
    )
    return Response(
        result.body, media_type="application/pdf", headers={"content-disposition": disposition}
    )


routes = [
    Route("/ui/billing", billing, methods=["GET"]),
    Route("/ui/billing/invoices/{invoice_id}.html", invoice_html, methods=["GET"]),
    Route("/ui/billing/invoices/{invoice_id}.pdf", invoice_pdf, methods=["GET"]),
]
