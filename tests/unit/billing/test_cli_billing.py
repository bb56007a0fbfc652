"""``regolo billing ...`` against a scripted API (SDK parsing included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner, Result

import regolo
from regolo.cli.main import app

BALANCE = {
    "object": "billing.balance",
    "account_id": "acct_1",
    "currency": "USD",
    "balance": "-0.20",
    "overdrawn": True,
    "low_balance": True,
    "low_balance_threshold": "10.00",
    "cost_per_hour": "0.00",
    "hours_remaining": None,
    "status": "paused_insufficient_credit",
    "paused_at": "2026-03-02T11:56:00+00:00",
    "pause_reason": "prepaid credit exhausted; top up to resume",
}
ESTIMATE = {
    "instance_type": "a100-40gb-x1",
    "currency": "USD",
    "price_book_version": "2025.1",
    "price_per_hour": "0.50",
    "replicas": 1,
    "min_replicas": 1,
    "max_replicas": 3,
    "hours_per_month": 720,
    "cost_per_hour": "0.50",
    "cost_per_month": "360.00",
    "cost_per_month_min": "360.00",
    "cost_per_month_max": "1080.00",
}
INVOICE = {
    "id": "inv_1",
    "status": "final",
    "account_id": "acct_1",
    "month": "2026-02",
    "issued_at": "2026-03-01T00:10:00+00:00",
    "lines": [],
    "total_hours": 7,
    "subtotal": "3.80",
    "opening_balance": "98.48",
    "credits_added": "0.00",
    "credits_applied": "3.80",
    "amount_due": "0.00",
    "closing_balance": "94.68",
}


def invoke(*args: str, seen: list[httpx.Request]) -> Result:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/v1/billing/balance":
            return httpx.Response(200, json=BALANCE)
        if path == "/v1/billing/estimate":
            return httpx.Response(200, json=ESTIMATE)
        if path == "/v1/billing/invoices":
            return httpx.Response(200, json={"object": "list", "data": [INVOICE]})
        if path == "/v1/billing/invoices/inv_1.pdf":
            return httpx.Response(200, content=b"%PDF-1.4 fake")
        if path == "/v1/billing/usage":
            return httpx.Response(200, text="hour_start,endpoint\n")
        if path == "/v1/billing/topups":
            body = json.loads(request.content)
            balance = {**BALANCE, "balance": "9.80", "status": "active", "overdrawn": False}
            return httpx.Response(
                201,
                json={
                    "id": "led_1",
                    "account_id": body.get("account_id") or "acct_1",
                    "amount": body["amount"],
                    "created_at": "2026-03-02T12:00:00+00:00",
                    "resumed": True,
                    "balance": balance,
                },
            )
        return httpx.Response(404, json={"error": {"message": "no", "type": "not_found_error"}})

    client = regolo.RegoloClient(
        api_key="rk", base_url="http://regolo.test", transport=httpx.MockTransport(handle)
    )
    return CliRunner().invoke(app, list(args), obj=client, env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_balance_shows_the_pause() -> None:
    seen: list[httpx.Request] = []
    result = invoke("billing", "balance", seen=seen)
    assert result.exit_code == 0, result.output
    assert "-0.20 USD" in result.output and "Paused" in result.output


def test_estimate_with_a_range() -> None:
    seen: list[httpx.Request] = []
    result = invoke(
        "billing", "estimate", "--instance-type", "a100-40gb-x1", "--max-replicas", "3", seen=seen
    )
    assert result.exit_code == 0, result.output
    assert "360.00 USD/month" in result.output and "1080.00" in result.output
    params: dict[str, Any] = dict(seen[-1].url.params)
    assert params["instance_type"] == "a100-40gb-x1" and params["max_replicas"] == "3"


def test_invoices_and_pdf(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    listed = invoke("billing", "invoices", seen=seen)
    assert listed.exit_code == 0 and "inv_1" in listed.output and "3.80" in listed.output
    target = tmp_path / "x.pdf"
    saved = invoke("billing", "invoices", "--pdf", "inv_1", "-o", str(target), seen=seen)
    assert saved.exit_code == 0, saved.output
    assert target.read_bytes().startswith(b"%PDF")


def test_topup_and_usage_csv() -> None:
    seen: list[httpx.Request] = []
    result = invoke("billing", "topup", "10.00", "--account", "team-b", seen=seen)
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output
    assert json.loads(seen[-1].content) == {"amount": "10.00", "account_id": "team-b"}
    assert "Idempotency-Key" in seen[-1].headers  # a retried top-up never credits twice
    usage = invoke("billing", "usage", "--month", "2026-02", "--csv", seen=seen)
    assert usage.exit_code == 0 and usage.output.startswith("hour_start,endpoint")
    assert seen[-1].url.params["format"] == "csv"
