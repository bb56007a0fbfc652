"""Background downloads of model versions, with progress stored on the version row.

Each download runs on its own thread (huggingface_hub is blocking). A version left
``downloading`` by a crash is picked up again at start (``resume_all``); files that
finished before are kept and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from regolo.server.errors import RegoloError
from regolo.server.hub.download import ResolvedModel, download, resolve
from regolo.server.hub.inspect import inspect_model
from regolo.server.hub.sources import ModelSource
from regolo.server.library.service import facts_dict
from regolo.server.settings import Settings
from regolo.server.store.database import Database
from regolo.server.store.tables import ModelVersion

log = logging.getLogger("regolo.downloads")
PROGRESS_WRITE_INTERVAL_SECONDS = 0.5


class Downloader:
    def __init__(
        self, db: Database, settings: Settings, on_ready: Callable[[], None] = lambda: None
    ) -> None:
        self.db = db
        self.settings = settings
        self.on_ready = on_ready
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, version_id: str, resolved: ResolvedModel, dest_dir: Path) -> None:
        with self._lock:
            if version_id in self._threads and self._threads[version_id].is_alive():
                return
            thread = threading.Thread(
                target=self._run,
                args=(version_id, resolved, dest_dir),
                name=f"download-{version_id}",
                daemon=True,
            )
            self._threads[version_id] = thread
            thread.start()

    def wait(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def resume_all(self) -> None:
        """Restart downloads a previous process left unfinished, pinned to their commit."""
        with self.db.read() as session:
            pending = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.status == "downloading", ModelVersion.source_kind == "hf"
                )
            ).all()
        for version in pending:
            source = ModelSource(
                kind="hf",
                display_name=version.repo_id or "",
                repo_id=version.repo_id,
                revision=version.commit_sha or version.revision,
            )
            try:
                resolved = resolve(
                    source,
                    token=self.settings.hf_token,
                    hf_endpoint=self.settings.hf_endpoint,
                    cdn_hosts=self.settings.hf_allowed_redirect_hosts,
                )
            except RegoloError as exc:
                self._fail(version.id, exc.message)
                continue
            self.start(version.id, resolved, Path(version.local_path or ""))

    def _run(self, version_id: str, resolved: ResolvedModel, dest_dir: Path) -> None:
        last_write = 0.0

        def progress(bytes_done: int, bytes_total: int, files_done: int, files_total: int) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write < PROGRESS_WRITE_INTERVAL_SECONDS and files_done < files_total:
                return
            last_write = now
            with self.db.write() as session:
                row = session.get(ModelVersion, version_id)
                if row is not None:
                    row.bytes_done, row.bytes_total = bytes_done, bytes_total
                    row.files_done, row.files_total = files_done, files_total

        try:
            path = download(resolved, dest_dir, progress, token=self.settings.hf_token)
            facts = inspect_model(path)
        except RegoloError as exc:
            self._fail(version_id, exc.message)
            return
        except Exception as exc:
            log.exception("download of %s failed", version_id)
            self._fail(version_id, f"download failed: {type(exc).__name__}")
            return
        with self.db.write() as session:
            row = session.get(ModelVersion, version_id)
            if row is None:
                return
            row.status = "ready"
            row.local_path = str(path)
            row.facts = facts_dict(facts)
            row.bytes_done = row.bytes_total = resolved.total_bytes
            row.files_done = row.files_total = len(resolved.chosen)
        self.on_ready()

    def _fail(self, version_id: str, reason: str) -> None:
        with self.db.write() as session:
            row = session.get(ModelVersion, version_id)
            if row is not None:
                row.status = "failed"
                row.status_reason = reason
