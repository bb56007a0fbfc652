"""Accounts (tenants) and the first admin key of each."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from regolo.server.keys import mint_key
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Account, ApiKey

DEFAULT_ACCOUNT = "default"


def create_account(session: Session, name: str, *, superadmin: bool = False) -> tuple[Account, str]:
    """Create an account with one admin key; returns the account and the raw key."""
    account = Account(id=new_id("acct"), name=name, is_superadmin=superadmin)
    session.add(account)
    session.flush()
    minted = mint_key()
    session.add(
        ApiKey(
            id=minted.key_id,
            account_id=account.id,
            name="admin",
            prefix=minted.prefix,
            secret_hash=minted.secret_hash,
            scopes=["admin"],
        )
    )
    session.flush()
    return account, minted.raw


def bootstrap(db: Database, home: Path) -> str | None:
    """On first start: the default (superadmin) account and its admin key.

    The key is written to ``$REGOLO_HOME/admin-key`` (mode 0600) and returned so the
    caller prints it once; on later starts nothing is created and None is returned.
    """
    with db.write() as session:
        if session.scalar(select(func.count()).select_from(Account)):
            return None
        _, raw_key = create_account(session, DEFAULT_ACCOUNT, superadmin=True)
        write_secret_file(home / "admin-key", raw_key)
    return raw_key


def write_secret_file(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
