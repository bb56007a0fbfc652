"""Credit decisions: pure functions of the balance and what the replicas will cost next."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, kw_only=True)
class CreditDecision:
    pause: bool
    resume: bool
    low_balance: bool


def decide(
    *,
    balance: Decimal,
    due_soon: Decimal,
    paused: bool,
    resume_cost: Decimal,
    low_balance_threshold: Decimal,
    enforce: bool,
) -> CreditDecision:
    """Pause when the hours about to start cannot be paid (the balance would go negative).

    ``due_soon``: the price of every replica hour that starts within the pause lead.
    ``resume_cost``: one hour of the replicas a paused account would get back; resuming
    needs at least that much, so a resume is never followed by an instant overdraft.
    """
    low = balance <= low_balance_threshold
    if not enforce:
        return CreditDecision(pause=False, resume=paused, low_balance=low)
    if paused:
        affordable = balance > 0 and balance >= resume_cost
        return CreditDecision(pause=False, resume=affordable, low_balance=low)
    return CreditDecision(pause=balance < 0 or balance < due_soon, resume=False, low_balance=low)
