"""An invoice as a PDF (fpdf2, pure Python; core fonts, so text is Latin-1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fpdf import FPDF

from regolo.server.billing.invoice_html import LINE_COLUMNS, TOTAL_ROWS

_WIDTHS_MM = (40, 20, 32, 24, 16, 24, 24)


def render_invoice_pdf(invoice: dict[str, Any]) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(_latin1(f"Invoice {invoice['month']}"))
    pdf.set_author("Regolo Endpoints")
    # The issue time, not "now": the same invoice always renders to the same bytes.
    pdf.set_creation_date(datetime.fromisoformat(invoice["issued_at"]))
    pdf.add_page()
    _header(pdf, invoice)
    _lines(pdf, invoice)
    _totals(pdf, invoice)
    return bytes(pdf.output())


def _header(pdf: FPDF, invoice: dict[str, Any]) -> None:
    title = f"Invoice {invoice['month']}"
    if invoice["status"] == "preview":
        title += " (preview)"
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for text in (
        f"Regolo Endpoints - account {invoice['account_name']} ({invoice['account_id']})",
        f"Invoice {invoice['id']} - issued {invoice['issued_at']}",
        f"Period {invoice['period_start']} to {invoice['period_end']} - "
        f"amounts in {invoice['currency']}",
    ):
        pdf.cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _lines(pdf: FPDF, invoice: dict[str, Any]) -> None:
    pdf.set_font("Helvetica", "B", 9)
    for (label, _, numeric), width in zip(LINE_COLUMNS, _WIDTHS_MM, strict=True):
        pdf.cell(width, 7, label, border="B", align="R" if numeric else "L")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    if not invoice["lines"]:
        pdf.cell(0, 7, "No usage this month.", new_x="LMARGIN", new_y="NEXT")
    for line in invoice["lines"]:
        for (_, key, numeric), width in zip(LINE_COLUMNS, _WIDTHS_MM, strict=True):
            pdf.cell(width, 6, _latin1(str(line[key]))[:28], align="R" if numeric else "L")
        pdf.ln()
    pdf.ln(4)


def _totals(pdf: FPDF, invoice: dict[str, Any]) -> None:
    for label, key in TOTAL_ROWS:
        pdf.set_font("Helvetica", "B" if key == "amount_due" else "", 10)
        pdf.cell(140, 6, label, align="R")
        pdf.cell(40, 6, _latin1(str(invoice[key])), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(
        0,
        4,
        "Hourly prepaid billing: each replica is charged from its first hour; "
        "no per-request charges.",
    )


def _latin1(text: str) -> str:
    """Core PDF fonts cover Latin-1 only; anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")
