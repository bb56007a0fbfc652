"""Billing settings, taken from ``Settings`` (fields ``billing_*``) with safe defaults.

A fresh ``regolo serve`` grants every account ``initial_credit`` once, so the demo
endpoint (cpu-small, 0.02/hour) runs for months before anyone needs to top up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, kw_only=True)
class BillingConfig:
    initial_credit: Decimal = Decimal("100.00")  # granted once per account
    low_balance_threshold: Decimal = Decimal("10.00")  # warn at or below
    # Pause this long before a replica's next hour would start without credit to pay it,
    # so the replicas are gone before the hour begins and the balance stays >= 0.
    pause_lead_seconds: float = 300.0
    meter_interval_seconds: float = 30.0
    # Month-end invoices wait this long for replicas whose start was recorded late.
    invoice_grace_seconds: float = 600.0
    enforce_credit: bool = True  # False: never pause (charges still accrue)


def billing_config(settings: Any) -> BillingConfig:
    defaults = BillingConfig()
    return BillingConfig(
        initial_credit=Decimal(
            str(getattr(settings, "billing_initial_credit", defaults.initial_credit))
        ),
        low_balance_threshold=Decimal(
            str(getattr(settings, "billing_low_balance_threshold", defaults.low_balance_threshold))
        ),
        pause_lead_seconds=float(
            getattr(settings, "billing_pause_lead_seconds", defaults.pause_lead_seconds)
        ),
        meter_interval_seconds=float(
            getattr(settings, "billing_meter_interval_seconds", defaults.meter_interval_seconds)
        ),
        invoice_grace_seconds=float(
            getattr(settings, "billing_invoice_grace_seconds", defaults.invoice_grace_seconds)
        ),
        enforce_credit=bool(getattr(settings, "billing_enforce_credit", defaults.enforce_credit)),
    )
