"""Invoice documents: line grouping, totals and credits, and their HTML and PDF forms."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from regolo.server.billing.invoice_html import render_invoice_html
from regolo.server.billing.invoice_pdf import render_invoice_pdf
from regolo.server.billing.invoices import Balances, InvoiceLine, invoice_document

D = Decimal


def _document(opening: str, added: str, closing: str, *, name: str = "team") -> dict[str, Any]:
    lines = [
        InvoiceLine(
            endpoint_id="ep_1",
            endpoint="chat",
            version="1.0",
            instance_type="l4-24gb-x1",
            price_book_version="v1",
            price_per_hour=D("0.013"),
            hours=7,  # 0.091 -> 0.09
        ),
        InvoiceLine(
            endpoint_id="ep_2",
            endpoint="<script>",
            version="2",
            instance_type="a100-40gb-x1",
            price_book_version="v1",
            price_per_hour=D("0.50"),
            hours=3,
        ),
    ]
    return invoice_document(
        invoice_id="inv_1",
        status="final",
        account_id="acct_1",
        account_name=name,
        month="2026-02",
        currency="USD",
        lines=lines,
        balances=Balances(opening=D(opening), credits_added=D(added), closing=D(closing)),
        issued_at=datetime(2026, 3, 1, 0, 10, tzinfo=UTC),
    )


def test_totals_are_the_sum_of_the_printed_lines() -> None:
    document = _document("1.00", "0.50", "-0.091")
    assert [line["amount"] for line in document["lines"]] == ["0.09", "1.50"]
    assert document["subtotal"] == "1.59" and document["total_hours"] == 10
    assert document["credits_applied"] == "1.50" and document["amount_due"] == "0.09"
    covered = _document("100", "0", "98.409")
    assert covered["credits_applied"] == "1.59" and covered["amount_due"] == "0.00"


def test_html_escapes_everything() -> None:
    page = render_invoice_html(_document("0", "0", "0", name='"><img src=x>'))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<img" not in page


def test_pdf_is_deterministic_and_latin1_safe() -> None:
    document = _document("0", "0", "0", name="ŝtudio ☃")
    first, second = render_invoice_pdf(document), render_invoice_pdf(document)
    assert first.startswith(b"%PDF-") and first == second
