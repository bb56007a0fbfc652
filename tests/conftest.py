"""Shared fixtures: a fresh REGOLO_HOME, databases (SQLite and PostgreSQL), live servers."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import regolo.server.gateway
from regolo.server.gateway._build import deactivate

# The suite tests the gateway's Python (some tests subclass or patch its classes, which
# a mypyc build forbids) even where `python -m regolo.server.gateway.speedups` has
# compiled it; test_gateway_compiled.py runs the gateway's tests against a build of its own.
deactivate(regolo.server.gateway.__path__)

POSTGRES_ADMIN_URL = os.environ.get(
    "REGOLO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "regolo-home"
    path.mkdir()
    return path


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), connect_timeout=3):
            return True
    except Exception:
        return False


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards.

    Under CI an unreachable server fails the test instead of skipping it.
    """
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at " + POSTGRES_ADMIN_URL)
        pytest.skip("PostgreSQL is not reachable")
    import psycopg

    name = f"regolo_test_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(POSTGRES_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, home: Path) -> str:
    """Both stores: every test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'regolo.db'}"
    return str(request.getfixturevalue("postgres_url"))
