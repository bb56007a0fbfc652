"""The store on SQLite and PostgreSQL: migrations, schema, CRUD, concurrency, outages."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from starlette.testclient import TestClient

from regolo.server.accounts import bootstrap, create_account
from regolo.server.app import create_app
from regolo.server.errors import Unavailable
from regolo.server.platform import Platform
from regolo.server.settings import Settings
from regolo.server.store.database import Database
from regolo.server.store.migrate import alembic_config, upgrade
from regolo.server.store.schema import load_all_tables
from regolo.server.store.tables import Account, ApiKey, IdempotencyRecord

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.write_engine)
    try:
        yield database
    finally:
        database.dispose()


# ---- migrations ------------------------------------------------------------------------


def test_migrations_upgrade_an_empty_db_to_every_head(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database.write_engine)
        upgrade(database.write_engine)  # idempotent: a restart applies nothing twice
        script = ScriptDirectory.from_config(alembic_config(database.write_engine))
        with database.write_engine.connect() as conn:
            applied = set(MigrationContext.configure(conn).get_current_heads())
        assert applied == set(script.get_heads())
        tables = set(inspect(database.write_engine).get_table_names())
        assert set(load_all_tables().metadata.tables) <= tables
    finally:
        database.dispose()


def test_schema_matches_the_models(db: Database) -> None:
    """``alembic revision --autogenerate`` would produce nothing: migrations == models."""
    metadata = load_all_tables().metadata
    with db.write_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == [], "\n".join(str(d) for d in diff)


def test_every_migration_has_one_parent_chain_to_0001(database_url: str) -> None:
    database = Database(database_url)
    try:
        script = ScriptDirectory.from_config(alembic_config(database.write_engine))
        bases = script.get_bases()
        assert bases == ["0001"]
        revisions = [r.revision for r in script.walk_revisions()]
        assert len(revisions) == len(set(revisions))
    finally:
        database.dispose()


# ---- CRUD ------------------------------------------------------------------------------


def test_account_and_key_round_trip(db: Database) -> None:
    with db.write() as session:
        account, raw = create_account(session, "team-a")
        account_id = account.id
    with db.read() as session:
        stored = session.get(Account, account_id)
        assert stored is not None and stored.name == "team-a" and not stored.is_superadmin
        assert stored.created_at.tzinfo is not None
        keys = session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)).all()
        assert len(keys) == 1 and keys[0].scopes == ["admin"]
        assert raw.startswith(keys[0].prefix + "_")
        assert raw.split("_", 2)[2] not in keys[0].secret_hash
    expires = datetime.now(UTC) + timedelta(days=1)
    with db.write() as session:
        key = session.get(ApiKey, keys[0].id)
        assert key is not None
        key.expires_at = expires
        key.scopes = ["admin", "inference:*"]
    with db.read() as session:
        key = session.get(ApiKey, keys[0].id)
        assert (
            key is not None and key.expires_at == expires and key.scopes == ["admin", "inference:*"]
        )
    with db.write() as session:
        session.delete(session.get(ApiKey, keys[0].id))
    with db.read() as session:
        assert session.get(ApiKey, keys[0].id) is None


def test_write_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as session:
        create_account(session, "half-done")
        raise RuntimeError("crash between the rows")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0
        assert session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_unique_names_are_enforced(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with db.write() as session:
        create_account(session, "same")
    with pytest.raises(IntegrityError), db.write() as session:
        create_account(session, "same")


def test_naive_datetimes_are_refused(db: Database) -> None:
    with db.write() as session:
        account, _ = create_account(session, "tz")
        account_id = account.id
    with pytest.raises(Exception, match="naive"), db.write() as session:
        key = session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)).one()
        key.expires_at = datetime(2030, 1, 1)


def test_idempotency_record_primary_key_is_per_account(db: Database) -> None:
    with db.write() as session:
        for account in ("a", "b"):
            session.add(
                IdempotencyRecord(
                    account_id=account,
                    key="same",
                    method="POST",
                    path="/v1/keys",
                    status_code=201,
                    response_body="{}",
                )
            )
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2


# ---- R13: many concurrent writers on SQLite ------------------------------------------------


def _hammer(threads: int, per_thread: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run(index: int) -> None:
        barrier.wait(timeout=60)
        for i in range(per_thread):
            try:
                work(index, i)
            except BaseException as exc:
                errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=200)
    assert not any(w.is_alive() for w in workers), "writers hung"
    return errors


def test_fifty_threads_times_one_hundred_writes_on_sqlite(home: Path) -> None:
    database = Database(f"sqlite:///{home / 'regolo.db'}")
    upgrade(database.write_engine)
    try:
        with database.write() as session:
            account, _ = create_account(session, "busy")
            account_id = account.id

        def write(thread: int, i: int) -> None:
            # Read-modify-write inside one transaction: the case that deadlocks into
            # "database is locked" without BEGIN IMMEDIATE.
            with database.write() as session:
                session.scalar(select(func.count()).select_from(IdempotencyRecord))
                session.add(
                    IdempotencyRecord(
                        account_id=account_id,
                        key=f"{thread}-{i}",
                        method="POST",
                        path="/x",
                        status_code=201,
                        response_body="{}",
                    )
                )

        errors = _hammer(50, 100, write)
        assert not errors, f"{len(errors)} failed writes, first: {errors[0]!r}"
        with database.read() as session:
            assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 5000
    finally:
        database.dispose()


def test_concurrent_api_writes_on_sqlite_never_500(home: Path) -> None:
    settings = Settings(home=home, backend="fake", demo=False)
    platform = Platform.open(settings)
    admin_key = bootstrap(platform.db, home)
    client = TestClient(
        create_app(settings, platform, run_loops=False),
        headers={"Authorization": f"Bearer {admin_key}"},
        raise_server_exceptions=False,
    )
    statuses: list[int] = []
    lock = threading.Lock()

    def create_and_revoke(thread: int, i: int) -> None:
        created = client.post(
            "/v1/keys",
            json={"name": f"k-{thread}-{i}"},
            headers={"Idempotency-Key": f"{thread}-{i}"},
        )
        revoked = client.delete(f"/v1/keys/{created.json().get('id', 'missing')}")
        with lock:
            statuses.extend([created.status_code, revoked.status_code])

    try:
        errors = _hammer(50, 4, create_and_revoke)
        assert not errors
        assert statuses.count(201) == 200 and statuses.count(200) == 200, sorted(set(statuses))
        with platform.db.read() as session:
            assert session.scalar(select(func.count()).select_from(ApiKey)) == 201
    finally:
        platform.close()


# ---- R14-lite: the store goes away --------------------------------------------------------


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and set(error) == {
        "message",
        "type",
        "param",
        "code",
    }
    assert "retry-after" in response.headers
    lowered = response.text.lower()
    for word in ("sqlalchemy", "sqlite", "psycopg", "select", "traceback", "/tmp"):
        assert word not in lowered


def _take_store_down(database_url: str, platform: Platform, home: Path) -> Any:
    """Make new connections fail; returns a function that brings the store back."""
    platform.db.dispose()
    if database_url.startswith("sqlite"):
        away = home.with_name(home.name + "-away")
        shutil.move(str(home), str(away))
        return lambda: shutil.move(str(away), str(home))
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin = (
        database_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
        + "/postgres"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

    def restore() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    return restore


def test_store_unavailable_answers_503_and_recovers(database_url: str, home: Path) -> None:
    settings = Settings(home=home, backend="fake", demo=False, database_url=database_url)
    platform = Platform.open(settings)
    admin_key = bootstrap(platform.db, home)
    app = create_app(settings, platform, run_loops=False)
    client = TestClient(
        app, headers={"Authorization": f"Bearer {admin_key}"}, raise_server_exceptions=False
    )
    assert client.get("/v1/keys").status_code == 200  # the admin key is now cached
    fresh_key = client.post("/v1/keys", json={"name": "fresh", "scopes": ["admin"]}).json()["key"]
    platform.authenticator.forget(fresh_key.split("_")[1])
    restore = _take_store_down(database_url, platform, home)
    try:
        _assert_503(client.get("/v1/keys"))
        _assert_503(client.post("/v1/keys", json={"name": "during-outage"}))
        _assert_503(client.get("/v1/endpoints"))
        # A key not in the cache cannot be checked: 503, not 401 and not 500.
        _assert_503(client.get("/v1/keys", headers={"Authorization": f"Bearer {fresh_key}"}))
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
    finally:
        restore()
    assert client.get("/v1/keys").status_code == 200
    assert client.get("/readyz").status_code == 200
    names = [k["name"] for k in client.get("/v1/keys").json()["data"]]
    assert "during-outage" not in names
    platform.close()


def test_database_translates_operational_errors(home: Path) -> None:
    database = Database(f"sqlite:///{home / 'missing-dir' / 'x.db'}")
    shutil.rmtree(home / "missing-dir")
    try:
        with pytest.raises(Unavailable), database.read() as session:
            session.execute(text("SELECT 1"))
    finally:
        database.dispose()
