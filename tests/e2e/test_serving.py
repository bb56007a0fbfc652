"""Issue 4 acceptance: real replicas of the demo model, kept healthy by the control plane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import openai
import psutil
from sqlalchemy import select

from regolo.server.demo import demo_gguf_path
from regolo.server.store.tables import Replica
from tests.support.live import LiveServer, free_port, live_server

FAST_HEALTH = {"health_probe_timeout_seconds": 2.0, "replica_start_timeout_seconds": 60.0}


def _replicas(server: LiveServer, *, live_only: bool = True) -> list[Replica]:
    with server.platform.db.read() as session:
        query = select(Replica)
        if live_only:
            query = query.where(Replica.stopped_at.is_(None))
        return list(session.scalars(query.order_by(Replica.created_at)))


def _wait(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _add_demo_as(server: LiveServer, name: str, path: Path | None = None) -> None:
    source = path or demo_gguf_path()
    with server.client() as http:
        response = http.post("/v1/library/models", json={"url": str(source), "name": name})
        assert response.status_code == 201, response.text


def test_two_replicas_serve_and_a_killed_one_is_replaced(home: Path) -> None:
    with live_server(home, **FAST_HEALTH) as server:
        _add_demo_as(server, "smol")
        with server.client() as http:
            created = http.post(
                "/v1/endpoints", json={"name": "chat", "model": "smol", "replicas": 2}
            )
            assert created.status_code == 201, created.text
        server.wait_ready("chat")
        first, second = _replicas(server)

        # The replica itself speaks the OpenAI API (with its own token) ...
        direct = openai.OpenAI(base_url=f"{first.address}/v1", api_key=first.auth_token)
        reply = direct.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert reply.choices[0].message.content is not None
        chunks = direct.chat.completions.create(
            model="smol", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        # ... and refuses callers without it.
        assert httpx.get(f"{first.address}/v1/models", timeout=5).status_code == 401

        os.kill(first.pid, signal.SIGKILL)  # type: ignore[arg-type]
        replaced = _wait(
            lambda: (
                [r for r in _replicas(server) if r.state == "ready" and r.id != first.id]
                if len([r for r in _replicas(server) if r.state == "ready"]) == 2
                and first.id not in {r.id for r in _replicas(server)}
                else None
            ),
            90,
            "the killed replica to be replaced",
        )
        assert second.id in {r.id for r in replaced}
        gone = next(r for r in _replicas(server, live_only=False) if r.id == first.id)
        assert gone.state == "failed" and "exited" in (gone.reason or "")


def test_frozen_engine_in_a_live_process_is_detected_and_replaced(home: Path) -> None:
    """R5: the process is alive but its engine answers nothing; only a real probe sees it."""
    with live_server(home, **FAST_HEALTH) as server:
        _add_demo_as(server, "smol")
        with server.client() as http:
            http.post("/v1/endpoints", json={"name": "chat", "model": "smol"}).raise_for_status()
        server.wait_ready("chat")
        (replica,) = _replicas(server)
        os.kill(replica.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            assert psutil.pid_exists(replica.pid)  # type: ignore[arg-type]
            _wait(
                lambda: any(r.state == "ready" and r.id != replica.id for r in _replicas(server)),
                120,
                "a replacement replica",
            )
        finally:
            if psutil.pid_exists(replica.pid):  # type: ignore[arg-type]
                os.kill(replica.pid, signal.SIGCONT)  # type: ignore[arg-type]
        old = next(r for r in _replicas(server, live_only=False) if r.id == replica.id)
        assert old.state == "failed"


def test_a_model_that_cannot_load_ends_failed_with_its_log(home: Path, tmp_path: Path) -> None:
    """R8: a GGUF whose header parses but whose weights are cut off never serves."""
    source = demo_gguf_path()
    assert source is not None
    broken = tmp_path / "models" / "broken.gguf"
    broken.parent.mkdir()
    with source.open("rb") as whole, broken.open("wb") as cut:
        cut.write(whole.read(8 * 1024 * 1024))
    with live_server(home, allowed_local_roots=[broken.parent], **FAST_HEALTH) as server:
        _add_demo_as(server, "broken", broken)
        with server.client() as http:
            http.post("/v1/endpoints", json={"name": "bad", "model": "broken"}).raise_for_status()
            body = _wait(
                lambda: (b := http.get("/v1/endpoints/bad").json())["status"] == "failed" and b,
                120,
                "the endpoint to fail",
            )
            assert "last log lines" in body["status_reason"]
            reply = http.post(
                "/v1/chat/completions",
                json={"model": "bad", "messages": [{"role": "user", "content": "x"}]},
                timeout=60,
            )
            assert reply.status_code == 503
        attempts = _replicas(server, live_only=False)
        assert len(attempts) == server.settings.replica_max_start_attempts
        assert all(r.state == "failed" for r in attempts)


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from regolo.server.main import serve
    serve(home=Path(sys.argv[1]), port=int(sys.argv[2]), demo=True)
    """
)


def _start_platform(home: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(home), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_restart_after_kill_9_readopts_replicas_without_duplicates(home: Path) -> None:
    """R11: the control plane dies with kill -9; its replicas live on and are re-adopted."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform = _start_platform(home, port)
    replica_pids: set[int] = set()
    try:
        key = _wait(
            lambda: (home / "admin-key").is_file() and (home / "admin-key").read_text().strip(),
            60,
            "key",
        )
        headers = {"Authorization": f"Bearer {key}"}

        def demo_status() -> str | None:
            try:
                return httpx.get(f"{base}/v1/endpoints/demo", headers=headers, timeout=5).json()[
                    "status"
                ]
            except httpx.HTTPError:
                return None

        _wait(lambda: demo_status() == "ready", 120, "the demo endpoint")
        before = [p.pid for p in psutil.Process(platform.pid).children(recursive=True)]
        replica_pids = set(before)
        assert len(before) == 1
        platform.kill()  # SIGKILL: no shutdown hooks run
        platform.wait(10)
        assert psutil.pid_exists(before[0]), "the replica should outlive the control plane"

        platform = _start_platform(home, port)
        _wait(lambda: demo_status() == "ready", 60, "the demo endpoint after restart")
        time.sleep(3)  # several reconcile ticks
        from regolo.server.store.database import Database

        db = Database(f"sqlite:///{home / 'regolo.db'}")
        with db.read() as session:
            live = list(session.scalars(select(Replica).where(Replica.stopped_at.is_(None))))
        db.dispose()
        assert [r.pid for r in live] == before
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            headers=headers,
            json={
                "model": "demo",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 4,
            },
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
    finally:
        platform.send_signal(signal.SIGTERM)
        try:
            platform.wait(30)
        except subprocess.TimeoutExpired:
            platform.kill()
        for pid in replica_pids:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)


def test_twice_as_many_concurrent_requests_as_slots_never_stall(home: Path) -> None:
    """llama.cpp gives each connection a thread of a fixed pool (parallel + 2 by default)
    and a kept-alive connection keeps its thread. With the health checker's connection
    held too, eight concurrent requests through the gateway to a four-slot replica left
    one waiting 7 s for an idle connection to time out (seen in benchmarks/batch.py)."""
    import asyncio

    with live_server(home, **FAST_HEALTH) as server:
        _add_demo_as(server, "smol")
        with server.client() as http:
            created = http.post("/v1/endpoints", json={"name": "chat", "model": "smol"})
            assert created.status_code == 201, created.text
        server.wait_ready("chat")
        client = openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1", api_key=server.admin_key, timeout=5.0, max_retries=0
        )

        async def rounds() -> None:
            for concurrency in (4, 8, 8):
                replies = await asyncio.gather(
                    *(
                        client.chat.completions.create(
                            model="chat",
                            messages=[{"role": "user", "content": f"Colour {i}?"}],
                            max_tokens=8,
                        )
                        for i in range(concurrency)
                    )
                )  # before: one request of the first eight timed out (it took 7 s)
                assert len(replies) == concurrency

        asyncio.run(rounds())
