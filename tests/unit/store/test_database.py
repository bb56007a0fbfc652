"""SQLite settings the store relies on, transactions, and error translation."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from regolo.server.errors import Unavailable
from regolo.server.store.database import SQLITE_BUSY_TIMEOUT_MS, Database
from regolo.server.store.ids import new_id


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'store.db'}")
    with database.write() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return database


def test_creates_the_directory(tmp_path: Path, db: Database) -> None:
    assert (tmp_path / "nested" / "dir" / "store.db").exists()


def test_sqlite_pragmas(db: Database) -> None:
    for engine in (db.write_engine, db.read_engine):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_write_takes_the_write_lock_at_begin(db: Database, tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: while a write transaction is open, another writer cannot start."""
    path = tmp_path / "nested" / "dir" / "store.db"
    with db.write() as session:
        session.execute(text("SELECT 1"))  # no write yet, yet the lock is already held
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_reads_do_not_wait_for_writers(db: Database) -> None:
    with db.write() as session:
        session.execute(text("INSERT INTO t (v) VALUES ('a')"))
    with db.write() as writer:
        writer.execute(text("INSERT INTO t (v) VALUES ('b')"))
        with db.read() as reader:  # WAL: the committed snapshot, at once
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_write_commits_or_rolls_back(db: Database) -> None:
    with db.write() as session:
        session.execute(text("INSERT INTO t (v) VALUES ('kept')"))
    with pytest.raises(KeyError), db.write() as session:
        session.execute(text("INSERT INTO t (v) VALUES ('dropped')"))
        raise KeyError("boom")
    with db.read() as session:
        assert [r[0] for r in session.execute(text("SELECT v FROM t"))] == ["kept"]


def test_operational_errors_become_unavailable(db: Database) -> None:
    with pytest.raises(Unavailable) as info, db.read() as session:
        session.execute(text("SELECT * FROM no_such_table"))
    assert info.value.status_code == 503 and "Retry-After" in info.value.headers
    assert "no_such_table" not in info.value.message


def test_concurrent_writers_all_commit(db: Database) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                with db.write() as session:
                    count = session.execute(text("SELECT count(*) FROM t")).scalar()
                    session.execute(
                        text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{n}-{i}-{count}"}
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 200


def test_ids_are_prefixed_and_unique() -> None:
    ids = {new_id("ep") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("ep_") and len(i) == 19 for i in ids)
