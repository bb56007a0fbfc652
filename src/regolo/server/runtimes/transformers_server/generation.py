"""The generation engine: one thread that decodes all running requests together, step by step.

Between two decode steps it admits waiting requests (prefilled together, then appended to
the running batch's KV cache) and retires finished or cancelled ones, so a request never
waits for another to finish. Tokens reach each request's handler through its EventSink.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from regolo.server.errors import Unavailable
from regolo.server.runtimes.transformers_server import kv_cache
from regolo.server.runtimes.transformers_server.events import (
    EventSink,
    Failed,
    Finished,
    FinishReason,
    TextDelta,
)
from regolo.server.runtimes.transformers_server.loading import LoadedModel
from regolo.server.runtimes.transformers_server.sampling import (
    SamplingParams,
    choose_token,
    make_generator,
)
from regolo.server.runtimes.transformers_server.stats import EngineStats
from regolo.server.runtimes.transformers_server.text import TextAssembler

log = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 0.05


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    params: SamplingParams
    sink: EventSink
    cancelled: bool = False  # set by the handler when its client goes away


@dataclass
class _Row:
    request: GenerationRequest
    text: TextAssembler
    generator: torch.Generator | None
    generated: int = 0
    finish_reason: str | None = None


@dataclass
class _Batch:
    rows: list[_Row] = field(default_factory=list)
    cache: Any = None
    mask: torch.Tensor | None = None
    next_tokens: list[int] = field(default_factory=list)


class GenerationEngine:
    def __init__(
        self, loaded: LoadedModel, *, max_batch: int, max_queue: int, batch_wait_ms: float
    ) -> None:
        self._loaded = loaded
        self._max_batch = max_batch
        self._batch_wait_seconds = batch_wait_ms / 1000
        self._waiting: queue.Queue[GenerationRequest] = queue.Queue(maxsize=max_queue)
        self._batch = _Batch()
        self._admitted: list[GenerationRequest] = []  # taken from the queue, not yet in the batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="generation-engine", daemon=True)
        self._eos_ids = _eos_ids(loaded)
        self._cache_kwarg = _cache_kwarg(loaded.model)
        self.stats = EngineStats()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, request: GenerationRequest) -> None:
        try:
            self._waiting.put_nowait(request)
        except queue.Full:
            raise Unavailable("the replica is overloaded", retry_after_seconds=1.0) from None

    # ---- engine thread ----

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a bad batch must not kill the engine
                log.exception("generation step failed; failing the running requests")
                self._fail_batch("generation failed")

    @torch.inference_mode()
    def _step(self) -> None:
        self._admitted = self._admit()
        if self._admitted:
            self._prefill(self._admitted)
            self._admitted = []
        if self._batch.rows:
            self._decode()
        self.stats.set_running(len(self._batch.rows))

    def _admit(self) -> list[GenerationRequest]:
        room = self._max_batch - len(self._batch.rows)
        if self._batch.rows and (room <= 0 or not kv_cache.is_reshapable(self._batch.cache)):
            return []
        if not self._batch.rows:
            return self._wait_for_first(room)
        return _drain(self._waiting, room)

    def _wait_for_first(self, room: int) -> list[GenerationRequest]:
        try:
            first = self._waiting.get(timeout=IDLE_POLL_SECONDS)
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._batch_wait_seconds
        admitted = [first]
        while len(admitted) < room and time.monotonic() < deadline:
            admitted += _drain(self._waiting, room - len(admitted))
            time.sleep(0.005)
        return admitted + _drain(self._waiting, room - len(admitted))

    def _prefill(self, requests: list[GenerationRequest]) -> None:
        requests = [request for request in requests if not request.cancelled]
        if not requests:
            return
        input_ids, mask = _left_pad([r.prompt_ids for r in requests], self._pad_id())
        device = self._loaded.device
        input_ids, mask = input_ids.to(device), mask.to(device)
        output = self._loaded.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
        )
        cache = _output_cache(output)
        rows = [_new_row(request, self._loaded.tokenizer) for request in requests]
        tokens = [self._accept(row, output.logits[i, -1]) for i, row in enumerate(rows)]
        self.stats.record_batch(len(rows), len(rows))
        self._join(rows, cache, mask, tokens)
        self._retire_finished()

    def _join(self, rows: list[_Row], cache: Any, mask: torch.Tensor, tokens: list[int]) -> None:
        batch = self._batch
        if not batch.rows:
            self._batch = _Batch(rows=rows, cache=cache, mask=mask, next_tokens=tokens)
            return
        assert batch.mask is not None
        batch.mask = kv_cache.append_rows(batch.cache, batch.mask, cache, mask)
        batch.rows += rows
        batch.next_tokens += tokens

    def _decode(self) -> None:
        batch = self._batch
        assert batch.mask is not None
        device = self._loaded.device
        positions = batch.mask.sum(dim=-1, keepdim=True)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)
        output = self._loaded.model(
            input_ids=torch.tensor(batch.next_tokens, device=device).unsqueeze(-1),
            attention_mask=batch.mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_kwarg: batch.cache},
        )
        batch.cache = _output_cache(output)
        logits = output.logits[:, -1]
        batch.next_tokens = [self._accept(row, logits[i]) for i, row in enumerate(batch.rows)]
        self.stats.record_batch(len(batch.rows), len(batch.rows))
        self._retire_finished()

    def _accept(self, row: _Row, logits: torch.Tensor) -> int:
        """Sample the row's next token, stream its text and decide whether the row is done."""
        token = choose_token(logits, row.request.params, row.generator)
        row.generated += 1
        if token in self._eos_ids:
            row.finish_reason = "stop"
            return token
        delta = row.text.add(token)
        if delta:
            row.request.sink.push(TextDelta(delta))
        if row.text.stopped:
            row.finish_reason = "stop"
        elif row.generated >= row.request.params.max_tokens:
            row.finish_reason = "length"
        return token

    def _retire_finished(self) -> None:
        batch = self._batch
        keep = [i for i, row in enumerate(batch.rows) if not _is_done(row)]
        if len(keep) == len(batch.rows):
            return
        for row in batch.rows:
            if _is_done(row):
                _finish(row)
                self.stats.record_request()
        if not keep:
            self._batch = _Batch()
            return
        assert batch.mask is not None
        batch.mask = kv_cache.select_rows(batch.cache, batch.mask, keep)
        batch.rows = [batch.rows[i] for i in keep]
        batch.next_tokens = [batch.next_tokens[i] for i in keep]

    def _fail_batch(self, message: str) -> None:
        requests = [row.request for row in self._batch.rows] + self._admitted
        for request in requests:
            request.sink.push(Failed(message))
            self.stats.record_request(failed=True)
        self._batch = _Batch()
        self._admitted = []

    def _pad_id(self) -> int:
        pad = self._loaded.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0


def _eos_ids(loaded: LoadedModel) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(loaded.model, "generation_config", None), loaded.model.config):
        value = getattr(source, "eos_token_id", None)
        ids.update(value if isinstance(value, list) else [value] if value is not None else [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.add(loaded.tokenizer.eos_token_id)
    return frozenset(int(i) for i in ids)


def _cache_kwarg(model: Any) -> str:
    # transformers 5 renamed ``past_key_values`` to ``cache``; older releases only know the former.
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _new_row(request: GenerationRequest, tokenizer: Any) -> _Row:
    text = TextAssembler(tokenizer, stops=request.params.stop)
    return _Row(request=request, text=text, generator=make_generator(request.params))


def _is_done(row: _Row) -> bool:
    return row.finish_reason is not None or row.request.cancelled


def _finish(row: _Row) -> None:
    if row.request.cancelled:
        return
    rest = row.text.flush()
    if rest:
        row.request.sink.push(TextDelta(rest))
    reason: FinishReason = "length" if row.finish_reason == "length" else "stop"
    row.request.sink.push(Finished(reason, len(row.request.prompt_ids), row.generated))


def _drain(waiting: queue.Queue[GenerationRequest], room: int) -> list[GenerationRequest]:
    taken: list[GenerationRequest] = []
    while len(taken) < room:
        try:
            taken.append(waiting.get_nowait())
        except queue.Empty:
            break
    return taken


def _left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(sequence) for sequence in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, sequence in enumerate(sequences):
        ids[i, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        mask[i, width - len(sequence) :] = 1
    return ids, mask
