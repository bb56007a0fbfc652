"""Pausing an account that ran out of credit: its deployments scaled to zero, and back.

The reconciler already honours ``Deployment.replicas``, so a pause is a desired-state
write: each active deployment's replica count is saved here and set to 0; a resume gives
the saved counts back. While paused, ``hold`` re-applies the zero to any deployment
someone scaled up again, remembering the newest count for the resume.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from regolo.server.billing.tables import BillingAccount, PausedDeployment
from regolo.server.store.tables import Deployment, Endpoint

PAUSED_STATUS = "paused_insufficient_credit"
PAUSED_REASON = "prepaid credit exhausted; top up to resume"


def is_paused(session: Session, account_id: str) -> bool:
    state = session.get(BillingAccount, account_id)
    return bool(state and state.paused)


def paused_account_ids(session: Session) -> set[str]:
    return set(
        session.scalars(select(BillingAccount.account_id).where(BillingAccount.paused.is_(True)))
    )


def pause_account(session: Session, account_id: str, now: datetime) -> bool:
    """Pause (idempotent); True when something changed."""
    state = session.get(BillingAccount, account_id)
    if state is None:
        return False
    changed = not state.paused
    if changed:
        state.paused, state.paused_at, state.pause_reason = True, now, PAUSED_REASON
    return hold(session, account_id) or changed


def hold(session: Session, account_id: str) -> bool:
    """Keep every active deployment of a paused account at zero replicas."""
    changed = False
    for deployment in _active_deployments(session, account_id):
        if deployment.replicas > 0:
            saved = session.get(PausedDeployment, deployment.id)
            if saved is None:
                session.add(
                    PausedDeployment(
                        deployment_id=deployment.id,
                        account_id=account_id,
                        replicas_before=deployment.replicas,
                    )
                )
            else:
                saved.replicas_before = deployment.replicas
            deployment.replicas = 0
            changed = True
    session.flush()
    return changed


def resume_account(session: Session, account_id: str) -> bool:
    state = session.get(BillingAccount, account_id)
    if state is None or not state.paused:
        return False
    active = {d.id: d for d in _active_deployments(session, account_id)}
    for saved in saved_deployments(session, account_id):
        deployment = active.get(saved.deployment_id)
        if deployment is not None and deployment.replicas == 0:
            deployment.replicas = saved.replicas_before
        session.delete(saved)
    state.paused, state.paused_at, state.pause_reason = False, None, None
    session.flush()
    return True


def saved_deployments(session: Session, account_id: str) -> list[PausedDeployment]:
    return list(
        session.scalars(select(PausedDeployment).where(PausedDeployment.account_id == account_id))
    )


def _active_deployments(session: Session, account_id: str) -> list[Deployment]:
    return list(
        session.scalars(
            select(Deployment)
            .join(Endpoint, Endpoint.id == Deployment.endpoint_id)
            .where(
                Endpoint.account_id == account_id,
                Endpoint.deleted_at.is_(None),
                Deployment.removed_at.is_(None),
            )
        )
    )
