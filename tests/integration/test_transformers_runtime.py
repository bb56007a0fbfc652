"""The transformers runtime end to end: the real server process over tiny random models."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from regolo.server.runtimes.transformers import TransformersRuntime
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources
from tests.support.tiny_models import (
    CLASSIFIER_LABELS,
    EMBEDDING_HIDDEN_SIZE,
    make_tiny_chat_model,
    make_tiny_classifier,
    make_tiny_embedding_model,
)

TOKEN = "replica-token"
START_TIMEOUT_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(path: Path, task: str, name: str, log: Path, **options: str) -> Iterator[str]:
    """Launch exactly what the runtime would launch, and wait for /health."""
    spec = ReplicaSpec(
        replica_id="r1",
        deployment_id="d1",
        runtime="transformers",
        artifact=ModelArtifact(
            path=str(path),
            format="safetensors",
            task=task,  # type: ignore[arg-type]
            served_model_name=name,
        ),
        resources=Resources(cpu_limit=1),
        auth_token=TOKEN,
        options=tuple(options.items()),
    )
    port = _free_port()
    command = TransformersRuntime().launch_command(spec, "127.0.0.1", port)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command.argv, env=os.environ | dict(command.env), stdout=log_file, stderr=log_file
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"server not healthy in time: {log.read_text()[-2000:]}")


def _client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=TOKEN, timeout=30, max_retries=0)


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("chat")
    model = make_tiny_chat_model(root / "model")
    yield from _start(model, "text-generation", "tiny-chat", root / "log.txt", batch_wait_ms="300")


@pytest.fixture(scope="module")
def classifier_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("clf")
    model = make_tiny_classifier(root / "model")
    yield from _start(model, "text-classification", "sentiment-classifier", root / "log.txt")


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("emb")
    model = make_tiny_embedding_model(root / "model")
    yield from _start(model, "feature-extraction", "tiny-emb", root / "log.txt")


def test_chat_completion_has_openai_shape_and_usage(chat_server: str) -> None:
    response = _client(chat_server).chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "hello world"}],
        max_tokens=4,
        temperature=0,
    )
    choice = response.choices[0]
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert response.usage is not None
    assert response.usage.prompt_tokens > 0
    assert 1 <= response.usage.completion_tokens <= 4
    assert response.model == "tiny-chat"


def test_streaming_chat_ends_with_a_finish_reason_and_usage(chat_server: str) -> None:
    stream = _client(chat_server).chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "tell me a story"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
        seed=3,
    )
    chunks = list(stream)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 5


def test_completion_and_seeded_sampling_repeat(chat_server: str) -> None:
    def complete() -> str:
        response = _client(chat_server).completions.create(
            model="tiny-chat", prompt="the cat", max_tokens=6, temperature=1.0, seed=11
        )
        assert response.choices[0].finish_reason in ("stop", "length")
        return response.choices[0].text

    assert complete() == complete()


def test_concurrent_requests_complete_and_are_batched(chat_server: str) -> None:
    def chat(index: int) -> str | None:
        response = _client(chat_server).chat.completions.create(
            model="tiny-chat",
            messages=[{"role": "user", "content": f"hello {index}"}],
            max_tokens=16,
            temperature=0,
        )
        return response.choices[0].finish_reason

    with ThreadPoolExecutor(max_workers=4) as pool:
        finishes = list(pool.map(chat, range(4)))
    assert all(reason in ("stop", "length") for reason in finishes)
    stats = httpx.get(f"{chat_server}/stats", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert stats["max_batch_size_seen"] >= 2


def test_missing_or_wrong_token_is_401_openai_shaped(chat_server: str) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.post(f"{chat_server}/v1/chat/completions", headers=headers, json={})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{chat_server}/stats").status_code == 401
    assert httpx.get(f"{chat_server}/health").status_code == 200


def test_bad_requests_are_openai_shaped_errors(chat_server: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    too_long = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6}
    response = httpx.post(f"{chat_server}/v1/chat/completions", headers=headers, json=too_long)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_tokens"
    response = httpx.post(f"{chat_server}/v1/embeddings", headers=headers, json={"input": "x"})
    assert response.status_code == 400


def test_classifier_answers_chat_with_the_top_label(classifier_server: str) -> None:
    response = _client(classifier_server).chat.completions.create(
        model="sentiment-classifier",
        messages=[{"role": "user", "content": "i love this movie"}],
    )
    label = response.choices[0].message.content
    assert label in CLASSIFIER_LABELS
    scores = response.model_extra["classification"]
    assert {entry["label"] for entry in scores} == set(CLASSIFIER_LABELS)
    assert scores[0]["label"] == label
    assert math.isclose(sum(entry["score"] for entry in scores), 1.0, rel_tol=1e-4)


def test_embeddings_are_normalized_vectors(embedding_server: str) -> None:
    response = _client(embedding_server).embeddings.create(
        model="tiny-emb", input=["hello world", "good movie"]
    )
    assert [item.index for item in response.data] == [0, 1]
    for item in response.data:
        assert len(item.embedding) == EMBEDDING_HIDDEN_SIZE
        assert math.isclose(math.sqrt(sum(x * x for x in item.embedding)), 1.0, rel_tol=1e-4)
    assert response.usage.prompt_tokens > 0
