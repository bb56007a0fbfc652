"""An invoice as a printable HTML page (every value escaped)."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; color: #111; }
h1 { margin-bottom: .2rem; } .muted { color: #555; }
table { border-collapse: collapse; width: 100%; margin: 1.2rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .5rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.totals td { border: none; } .totals tr.strong td { font-weight: 700; }
@media print { body { margin: 0; } .noprint { display: none; } }
"""

LINE_COLUMNS = (
    ("Endpoint", "endpoint", False),
    ("Version", "version", False),
    ("Instance type", "instance_type", False),
    ("Price book", "price_book_version", False),
    ("Hours", "hours", True),
    ("Rate / hour", "price_per_hour", True),
    ("Amount", "amount", True),
)

TOTAL_ROWS = (
    ("Total hours", "total_hours"),
    ("Subtotal", "subtotal"),
    ("Opening balance", "opening_balance"),
    ("Credits added", "credits_added"),
    ("Credits applied", "credits_applied"),
    ("Amount due", "amount_due"),
    ("Closing balance", "closing_balance"),
)


def render_invoice_html(invoice: dict[str, Any]) -> str:
    currency = escape(str(invoice["currency"]))
    title = f"Invoice {invoice['month']}" + (" (preview)" if invoice["status"] == "preview" else "")
    head = "".join(
        f'<th class="{"num" if num else ""}">{escape(label)}</th>' for label, _, num in LINE_COLUMNS
    )
    rows = "".join(_line_row(line) for line in invoice["lines"]) or (
        f'<tr><td colspan="{len(LINE_COLUMNS)}" class="muted">No usage this month.</td></tr>'
    )
    totals = "".join(
        f'<tr class="{"strong" if key == "amount_due" else ""}"><td>{escape(label)}</td>'
        f'<td class="num">{escape(str(invoice[key]))}</td></tr>'
        for label, key in TOTAL_ROWS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p class="muted">Regolo Endpoints · account {escape(str(invoice["account_name"]))}
({escape(str(invoice["account_id"]))}) · invoice {escape(str(invoice["id"]))}<br>
Period {escape(str(invoice["period_start"]))} to {escape(str(invoice["period_end"]))} ·
issued {escape(str(invoice["issued_at"]))} · amounts in {currency}</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<table class="totals">{totals}</table>
<p class="muted">Hourly prepaid billing: each replica is charged from its first hour;
no per-request charges.</p>
<p class="noprint"><button onclick="window.print()">Print</button></p>
</body></html>
"""


def _line_row(line: dict[str, Any]) -> str:
    cells = "".join(
        f'<td class="{"num" if num else ""}">{escape(str(line[key]))}</td>'
        for _, key, num in LINE_COLUMNS
    )
    return f"<tr>{cells}</tr>"
