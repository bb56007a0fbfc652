"""Cross-process change notification on PostgreSQL (LISTEN/NOTIFY).

A process that changes what the gateway routes on announces it; gateway processes
listening rebuild their routing table at once instead of at the next periodic refresh.
On SQLite (one process) this does nothing: the in-process notification is enough.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from regolo.server.store.database import Database

log = logging.getLogger("regolo.changes")
CHANNEL = "regolo_changes"


class ChangeFeed:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.enabled = db.url.startswith("postgresql")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce(self) -> None:
        if not self.enabled:
            return
        try:
            with self.db.write_engine.connect() as connection:
                connection.exec_driver_sql(f"NOTIFY {CHANNEL}")
                connection.commit()
        except Exception:
            log.warning("could not announce a change; listeners will catch up on refresh")

    def listen(self, on_change: Callable[[], None]) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(on_change,), name="regolo-listen", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, on_change: Callable[[], None]) -> None:
        import psycopg

        url = self.db.url.replace("postgresql+psycopg://", "postgresql://")
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        if any(True for _ in connection.notifies(timeout=1.0, stop_after=1)):
                            on_change()
            except Exception:
                log.warning("change listener lost its connection; reconnecting")
                self._stop.wait(2.0)
