"""Billing calls of the control-plane API: balance, top-ups, usage, invoices, estimates.

Money comes back as ``Decimal`` (the server sends exact decimal strings).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from regolo._http import HTTPSession, list_data
from regolo._urls import segment


class _BillingObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Balance(_BillingObject):
    """``status``: ``active`` or ``paused_insufficient_credit``."""

    account_id: str
    currency: str = "USD"
    balance: Decimal
    overdrawn: bool = False
    low_balance: bool = False
    low_balance_threshold: Decimal = Decimal(0)
    cost_per_hour: Decimal = Decimal(0)
    hours_remaining: int | None = None
    status: str = "active"
    paused_at: datetime | None = None
    pause_reason: str | None = None


class TopUp(_BillingObject):
    id: str
    account_id: str
    amount: Decimal
    created_at: datetime
    note: str | None = None
    resumed: bool = False
    balance: Balance


class EndpointUsage(_BillingObject):
    endpoint_id: str
    endpoint: str
    hours: int
    amount: Decimal


class UsageHour(_BillingObject):
    hour_start: datetime
    endpoint: str
    endpoint_id: str
    version: str
    replica_id: str
    instance_type: str
    price_book_version: str
    price_per_hour: Decimal
    billed_month: str


class Usage(_BillingObject):
    month: str
    currency: str = "USD"
    total_hours: int = 0
    total_amount: Decimal = Decimal(0)
    by_endpoint: list[EndpointUsage] = Field(default_factory=list)
    data: list[UsageHour] = Field(default_factory=list)


class InvoiceLine(_BillingObject):
    endpoint_id: str
    endpoint: str
    version: str
    instance_type: str
    price_book_version: str
    hours: int
    price_per_hour: Decimal
    amount: Decimal


class Invoice(_BillingObject):
    """``status``: ``final`` (issued after the month, never changes) or ``preview``."""

    id: str
    status: str
    account_id: str
    month: str
    currency: str = "USD"
    issued_at: datetime
    lines: list[InvoiceLine] = Field(default_factory=list)
    total_hours: int = 0
    subtotal: Decimal
    opening_balance: Decimal
    credits_added: Decimal
    credits_applied: Decimal
    amount_due: Decimal
    closing_balance: Decimal


class CostEstimate(_BillingObject):
    instance_type: str
    currency: str = "USD"
    price_book_version: str = ""
    price_per_hour: Decimal
    replicas: int
    min_replicas: int
    max_replicas: int
    hours_per_month: int
    cost_per_hour: Decimal
    cost_per_month: Decimal
    cost_per_month_min: Decimal
    cost_per_month_max: Decimal
    model: str | None = None
    version: str | None = None
    fits: bool | None = None
    fit_reason: str | None = None


class BillingAPI:
    _http: HTTPSession

    def estimate_cost(
        self,
        model: str | None = None,
        instance_type: str | None = None,
        replicas: int = 1,
        hours_per_month: int = 720,
        *,
        version: str | None = None,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
    ) -> CostEstimate:
        """What a deployment would cost; an autoscaling range gives a min-max.

        Example:
            cost = client.estimate_cost(model="Llama-2-7B", instance_type="a100-40gb-x1")
            print(cost.price_per_hour, cost.cost_per_month)  # 0.50 360.00
        """
        params = _params(
            model=model,
            version=version,
            instance_type=instance_type,
            replicas=replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            hours_per_month=hours_per_month,
        )
        body = self._http.request("GET", "/v1/billing/estimate", params=params)
        return CostEstimate.model_validate(body)

    def get_balance(self) -> Balance:
        """The account's prepaid credit.  Example: print(client.get_balance().balance)"""
        return Balance.model_validate(self._http.request("GET", "/v1/billing/balance"))

    def topup(
        self, amount: Decimal | str | int, account_id: str | None = None, note: str | None = None
    ) -> TopUp:
        """Add prepaid credit (superadmin key); resumes a paused account that can pay again.

        Example: client.topup("50.00", account_id="team-a").balance.balance
        """
        body = _params(amount=str(amount), account_id=account_id, note=note)
        return TopUp.model_validate(self._http.request("POST", "/v1/billing/topups", json=body))

    def get_usage(self, month: str | None = None) -> Usage:
        """Charged hours of a month (``YYYY-MM``, default this month).

        Example: [(u.endpoint, u.hours) for u in client.get_usage("2026-01").by_endpoint]
        """
        body = self._http.request("GET", "/v1/billing/usage", params=_params(month=month))
        return Usage.model_validate(body)

    def get_usage_csv(self, month: str | None = None) -> str:
        """The month's charged hours as CSV.

        Example: Path("usage.csv").write_text(client.get_usage_csv("2026-01"))
        """
        return self._raw("/v1/billing/usage", _params(month=month, format="csv")).decode()

    def list_invoices(self) -> list[Invoice]:
        """The running month's preview, then issued invoices, newest first.

        Example: [(i.month, i.subtotal) for i in client.list_invoices()]
        """
        body = self._http.request("GET", "/v1/billing/invoices")
        return [Invoice.model_validate(item) for item in list_data(body)]

    def get_invoice(self, invoice_id: str = "preview") -> Invoice:
        """One invoice (``preview`` for the running month).  Example: client.get_invoice(i.id)"""
        body = self._http.request("GET", f"/v1/billing/invoices/{segment(invoice_id)}")
        return Invoice.model_validate(body)

    def download_invoice_pdf(self, invoice_id: str, path: str | Path) -> Path:
        """Save an invoice as PDF.  Example: client.download_invoice_pdf(i.id, "invoice.pdf")"""
        target = Path(path)
        target.write_bytes(self._raw(f"/v1/billing/invoices/{segment(invoice_id)}.pdf", None))
        return target

    def _raw(self, url: str, params: dict[str, Any] | None) -> bytes:
        request = self._http._build("GET", url, json=None, params=params, idempotent=True)
        response = self._http._send(request, stream=False)
        return response.content


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
