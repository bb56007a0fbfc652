"""Classification and embedding engine: one thread that runs concurrent requests as one batch."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from regolo.server.errors import Unavailable
from regolo.server.runtimes.transformers_server.config import Task
from regolo.server.runtimes.transformers_server.loading import LoadedModel
from regolo.server.runtimes.transformers_server.stats import EngineStats

log = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Encoded:
    """Per input text: label scores (classification) or a unit vector (embeddings)."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass
class EncodeRequest:
    texts: list[str]
    result: Future[Encoded] = field(default_factory=Future)


class EncodingEngine:
    def __init__(self, loaded: LoadedModel, task: Task, *, max_batch: int, max_queue: int) -> None:
        self._loaded = loaded
        self._task = task
        self._max_batch = max_batch
        self._waiting: queue.Queue[EncodeRequest] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="encoding-engine", daemon=True)
        self.stats = EngineStats()

    @property
    def labels(self) -> list[str]:
        id2label = self._loaded.model.config.id2label
        return [str(id2label[i]) for i in range(len(id2label))]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, request: EncodeRequest) -> None:
        try:
            self._waiting.put_nowait(request)
        except queue.Full:
            raise Unavailable("the replica is overloaded", retry_after_seconds=1.0) from None

    def _run(self) -> None:
        while not self._stop.is_set():
            requests = self._take_batch()
            if not requests:
                continue
            try:
                self._encode(requests)
            except Exception as error:  # a bad batch must not kill the engine
                log.exception("encoding failed")
                for request in requests:
                    request.result.set_exception(error)
                    self.stats.record_request(failed=True)

    def _take_batch(self) -> list[EncodeRequest]:
        try:
            taken = [self._waiting.get(timeout=IDLE_POLL_SECONDS)]
        except queue.Empty:
            return []
        texts = len(taken[0].texts)
        while texts < self._max_batch:
            try:
                taken.append(self._waiting.get_nowait())
            except queue.Empty:
                break
            texts += len(taken[-1].texts)
        return taken

    @torch.inference_mode()
    def _encode(self, requests: list[EncodeRequest]) -> None:
        texts = [text for request in requests for text in request.texts]
        tokenizer = self._loaded.tokenizer
        inputs = tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._loaded.context_length,
            return_tensors="pt",
        ).to(self._loaded.device)
        output = self._loaded.model(**inputs)
        rows = self._vectors(output, inputs["attention_mask"]).float().cpu().tolist()
        token_counts = inputs["attention_mask"].sum(dim=-1).tolist()
        self.stats.record_batch(len(texts), 0)
        start = 0
        for request in requests:
            end = start + len(request.texts)
            request.result.set_result(Encoded(rows[start:end], int(sum(token_counts[start:end]))))
            self.stats.record_request()
            start = end

    def _vectors(self, output: object, mask: torch.Tensor) -> torch.Tensor:
        if self._task == "text-classification":
            return torch.softmax(output.logits, dim=-1)  # type: ignore[attr-defined]
        return mean_pool(output.last_hidden_state, mask)  # type: ignore[attr-defined]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token states that are not padding, then scale to unit length."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(dim=1)
    pooled = summed / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)
