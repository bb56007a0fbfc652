"""R12: kill -9 the server during API writes, again and again; nothing acknowledged is lost.

The server runs as ``regolo serve`` would (``serve(home=..., port=..., demo=False)``) in
a subprocess on SQLite under a temporary home. Writer threads create keys with
``Idempotency-Key`` headers while the process is SIGKILLed at random moments. After
each restart every acknowledged key exists, complete, and retrying any request with its
Idempotency-Key returns the original object instead of making a second one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from regolo.server.demo import demo_gguf_path
from regolo.server.store.database import Database
from regolo.server.store.tables import ApiKey, Deployment, Endpoint, IdempotencyRecord
from tests.support.live import free_port

ROUNDS = 20
WRITERS = 3
pytestmark = pytest.mark.timeout(420)

# A warm parent imports the platform once and forks one server per round, so each of
# the 20+ rounds pays for a start, not for importing everything again. Each child is a
# whole server process (``serve(home=..., port=..., demo=False)``) that the test kills
# with SIGKILL; SIGCHLD is ignored so dead children are reaped at once.
FORK_SERVER = """
import importlib, os, signal, sys, tempfile
from regolo.server.main import serve
home, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# Warm up: import what the first start imports lazily (routers, loops, uvicorn parts).
from regolo.server.app import create_app
from regolo.server.platform import Platform, FEATURE_LOOP_MODULES
from regolo.server.settings import Settings
with tempfile.TemporaryDirectory() as scratch:
    warm = Platform.open(Settings(home=scratch, demo=False))
    create_app(warm.settings, warm)
    warm.close()
for name in (*FEATURE_LOOP_MODULES, "uvicorn.loops.auto", "uvicorn.protocols.http.auto",
             "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.on", "uvicorn.loops.uvloop",
             "uvicorn.protocols.http.httptools_impl", "uvicorn.protocols.http.h11_impl"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)
        os.dup2(log, 2)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        serve(home=home, port=port, demo=False)
        os._exit(0)
    print(pid, flush=True)
"""


@dataclass
class Ledger:
    """What the clients saw: acknowledged creates and ones whose outcome is unknown."""

    acknowledged: dict[str, dict[str, object]] = field(default_factory=dict)  # idem key -> body
    unknown: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # answers other than 201 (a 500, say)
    endpoints: bool = False  # whether a model is registered, so endpoints are written too
    lock: threading.Lock = field(default_factory=threading.Lock)


class Server:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.log_path = home.parent / "server.log"
        env = {
            **os.environ,
            "REGOLO_BACKEND": "fake",
            "REGOLO_LOG_LEVEL": "warning",
            "REGOLO_DEMO": "false",
        }
        env.pop("REGOLO_DATABASE_URL", None)
        gguf = demo_gguf_path()
        if gguf is not None:
            env["REGOLO_ALLOWED_LOCAL_ROOTS"] = json.dumps([str(gguf.parent)])
        self.forker = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER, str(home), str(self.port), str(self.log_path)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.forker.stdin is not None and self.forker.stdout is not None
        self.forker.stdin.write("start\n")
        self.forker.stdin.flush()
        self.pid = int(self.forker.stdout.readline())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert _alive(self.pid), self._log_tail()
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server did not come up\n" + self._log_tail())

    def kill(self) -> None:
        if self.pid is not None and _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not _alive(self.pid)
        self.pid = None

    def close(self) -> None:
        self.kill()
        self.forker.kill()
        self.forker.wait(timeout=30)

    def admin_key(self) -> str:
        return (self.home / "admin-key").read_text().strip()

    def _log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    running = Server(home)
    try:
        yield running
    finally:
        running.close()


MODEL = "crash-model"


def _request_for(idem: str) -> tuple[str, dict[str, object]]:
    """The create request an Idempotency-Key stands for (retries resend exactly this)."""
    if idem.startswith("ep-"):
        return "/v1/endpoints", {"name": idem, "model": MODEL, "version": "1.0", "replicas": 0}
    return "/v1/keys", {"name": idem, "scopes": ["inference:*"]}


def _read_path(idem: str, created: dict[str, object]) -> str:
    return (
        f"/v1/endpoints/{created['id']}" if idem.startswith("ep-") else f"/v1/keys/{created['id']}"
    )


def _register_model(server: Server) -> bool:
    """Add the demo GGUF to the library so endpoints can be created; False if absent."""
    gguf = demo_gguf_path()
    if gguf is None:
        return False
    headers = {"Authorization": f"Bearer {server.admin_key()}"}
    body = {"url": str(gguf), "name": MODEL, "version": "1.0"}
    response = httpx.post(
        f"{server.base_url}/v1/library/models", json=body, headers=headers, timeout=60
    )
    assert response.status_code == 201, response.text
    return True


def _writer(
    server: Server, ledger: Ledger, writer: int, round_no: int, stop: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {server.admin_key()}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            # Writer 0 creates endpoints (when a model is registered), the others keys.
            kind = "ep-" if writer == 0 and ledger.endpoints else ""
            idem = f"{kind}r{round_no}-w{writer}-{n}"
            n += 1
            with ledger.lock:
                ledger.unknown.add(idem)
            try:
                path, body = _request_for(idem)
                response = client.post(path, json=body, headers={"Idempotency-Key": idem})
            except httpx.HTTPError:
                return  # the server died under us: the outcome stays unknown
            if response.status_code != 201:
                with ledger.lock:
                    ledger.errors.append(f"{idem}: {response.status_code} {response.text[:200]}")
                return
            with ledger.lock:
                ledger.unknown.discard(idem)
                ledger.acknowledged[idem] = response.json()


def _one_round(server: Server, ledger: Ledger, round_no: int, rng: random.Random) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=_writer, args=(server, ledger, w, round_no, stop), daemon=True)
        for w in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(rng.uniform(0.05, 0.8))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def _check_after_restart(server: Server, ledger: Ledger, round_no: int) -> None:
    """Through the API: this round's acknowledged writes and a sample of older ones.

    The whole ledger is checked against the store at the end (``_check_store``).
    """
    headers = {"Authorization": f"Bearer {server.admin_key()}"}
    rng = random.Random(round_no)
    this_round = f"r{round_no}-"
    current = [i for i in ledger.acknowledged if i.removeprefix("ep-").startswith(this_round)]
    older = [i for i in ledger.acknowledged if i not in current]
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        for idem in current + rng.sample(older, min(10, len(older))):
            got = client.get(_read_path(idem, ledger.acknowledged[idem]))
            assert got.status_code == 200, f"acknowledged write {idem} lost"
            assert got.json()["name"] == idem
        # Resolve the unknown ones by retrying: afterwards each is a known, single object.
        for idem in sorted(ledger.unknown):
            path, body = _request_for(idem)
            retry = client.post(path, json=body, headers={"Idempotency-Key": idem})
            assert retry.status_code == 201, retry.text
            ledger.acknowledged[idem] = {**retry.json(), "key": None}
        ledger.unknown.clear()
        # Replays of acknowledged creates return the original, never a second object.
        for idem in rng.sample(sorted(ledger.acknowledged), min(10, len(ledger.acknowledged))):
            path, body = _request_for(idem)
            replay = client.post(path, json=body, headers={"Idempotency-Key": idem})
            assert replay.status_code == 201
            assert replay.json()["id"] == ledger.acknowledged[idem]["id"]
            if path == "/v1/keys":
                assert replay.json()["key"] is None  # the secret is never stored or replayed


def _check_store(home: Path, ledger: Ledger) -> None:
    database = Database(f"sqlite:///{home / 'regolo.db'}")
    try:
        with database.read() as session:
            keys = session.scalars(select(ApiKey)).all()
            endpoints = session.scalars(select(Endpoint)).all()
            deployed = set(session.scalars(select(Deployment.endpoint_id)))
            records = {r.key for r in session.scalars(select(IdempotencyRecord))}
    finally:
        database.dispose()
    ids_by_name: dict[str, list[str]] = {}
    for key in keys:
        ids_by_name.setdefault(key.name, []).append(key.id)
        # No partial objects: every row is whole.
        assert key.prefix == f"rg_{key.id}" and len(key.secret_hash) == 64 and key.scopes
    for endpoint in endpoints:
        ids_by_name.setdefault(endpoint.name, []).append(endpoint.id)
        assert endpoint.id in deployed, f"endpoint {endpoint.name} has no deployment"
    duplicates = {name: ids for name, ids in ids_by_name.items() if len(ids) > 1}
    assert not duplicates, f"created twice: {duplicates}"
    for idem, original in ledger.acknowledged.items():
        assert idem in records and ids_by_name[idem] == [original["id"]]
    # Every idempotency record points at an object that exists, and vice versa.
    assert {name for name in ids_by_name if name != "admin"} == records


def test_kill_minus_nine_during_key_writes_loses_nothing(server: Server) -> None:
    rng = random.Random(int(os.environ.get("REGOLO_TEST_SEED", "12")))
    ledger = Ledger()
    server.start()
    ledger.endpoints = _register_model(server)
    for round_no in range(ROUNDS):
        _one_round(server, ledger, round_no, rng)
        server.start()
        _check_after_restart(server, ledger, round_no)
    server.kill()
    assert not ledger.errors, ledger.errors[:5]
    assert len(ledger.acknowledged) >= ROUNDS  # the loop really wrote something
    if ledger.endpoints:
        assert any(idem.startswith("ep-") for idem in ledger.acknowledged)
    _check_store(server.home, ledger)
