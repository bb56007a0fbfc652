"""A real platform in-process: uvicorn on a free loopback port, its own REGOLO_HOME.

Used by integration and end-to-end tests that talk HTTP to the platform exactly as a
user would (SDK, openai client, curl-equivalent httpx calls).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from regolo.server.accounts import DEFAULT_ACCOUNT, bootstrap
from regolo.server.app import create_app
from regolo.server.backends.base import ReplicaBackend
from regolo.server.demo import demo_gguf_path
from regolo.server.library.demo import deploy_demo
from regolo.server.platform import Platform
from regolo.server.settings import Settings
from regolo.server.store.tables import Account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    admin_key: str
    platform: Platform
    settings: Settings
    account_id: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=120,
        )

    def wait_ready(
        self, endpoint: str, timeout: float = 180.0, key: str | None = None
    ) -> dict[str, Any]:
        """Poll the API until the endpoint is ready; fail loudly with its last state."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        with self.client(key) as http:
            while time.monotonic() < deadline:
                body = http.get(f"/v1/endpoints/{endpoint}").json()
                if body.get("status") == "ready":
                    return body
                if body.get("status") == "failed":
                    raise AssertionError(f"endpoint {endpoint} failed: {body.get('status_reason')}")
                time.sleep(0.3)
        raise AssertionError(f"endpoint {endpoint} not ready in {timeout}s: {body}")


@contextlib.contextmanager
def live_server(
    home: Path,
    *,
    demo: bool = False,
    backend: ReplicaBackend | None = None,
    database_url: str | None = None,
    **settings_overrides: Any,
) -> Iterator[LiveServer]:
    port = free_port()
    roots = list(settings_overrides.pop("allowed_local_roots", []))
    demo_path = demo_gguf_path()
    if demo_path is not None:
        roots.append(demo_path.parent)
    settings = Settings(
        home=home,
        port=port,
        database_url=database_url,
        allowed_local_roots=roots,
        reconcile_interval_seconds=0.3,
        health_interval_seconds=0.5,
        routing_refresh_seconds=1.0,
        **settings_overrides,
    )
    platform = Platform.open(settings, backend=backend)
    admin_key = bootstrap(platform.db, home)
    if admin_key is None:
        admin_key = (home / "admin-key").read_text().strip()
    with platform.db.read() as session:
        account_id = session.scalar(select(Account.id).where(Account.name == DEFAULT_ACCOUNT))
    assert account_id is not None
    if demo:
        assert deploy_demo(platform.db, account_id), "demo model not installed"
    app = create_app(settings, platform)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the platform did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(
            base_url=f"http://127.0.0.1:{port}",
            admin_key=admin_key,
            platform=platform,
            settings=settings,
            account_id=account_id,
        )
    finally:
        server.should_exit = True
        thread.join(30)
        _stop_all_replicas(platform)


def _stop_all_replicas(platform: Platform) -> None:
    """Tests must not leave replica processes behind."""
    import asyncio

    from regolo.server.control.reconciler import handle_of
    from regolo.server.store.database import Database
    from regolo.server.store.tables import Replica

    db = Database(platform.settings.resolved_database_url)
    try:
        with db.read() as session:
            handles = [
                handle_of(r)
                for r in session.scalars(select(Replica).where(Replica.stopped_at.is_(None)))
                if r.address
            ]
        for handle in handles:
            with contextlib.suppress(Exception):
                asyncio.run(platform.backend.stop(handle, drain_seconds=2.0))
    finally:
        db.dispose()
