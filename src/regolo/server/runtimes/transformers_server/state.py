"""What the HTTP routes share: the config, and the engine once the model is loaded and warm."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch

from regolo.server.runtimes.transformers_server import loading
from regolo.server.runtimes.transformers_server.config import ServerConfig
from regolo.server.runtimes.transformers_server.encoding import EncodingEngine
from regolo.server.runtimes.transformers_server.generation import GenerationEngine
from regolo.server.runtimes.transformers_server.loading import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    config: ServerConfig
    created: int = field(default_factory=lambda: int(time.time()))
    loaded: LoadedModel | None = None
    generation: GenerationEngine | None = None
    encoding: EncodingEngine | None = None
    load_error: str | None = None

    @property
    def ready(self) -> bool:
        engine = self.generation or self.encoding
        return engine is not None and engine.is_alive()

    def load(self) -> None:
        """Load the model, run one warm-up forward pass, then start the engine."""
        started = time.monotonic()
        loaded = loading.load(self.config)
        _warm_up(loaded)
        if self.config.task == "text-generation":
            self.generation = GenerationEngine(
                loaded,
                max_batch=self.config.max_batch,
                max_queue=self.config.max_queue,
                batch_wait_ms=self.config.batch_wait_ms,
            )
            self.generation.start()
        else:
            self.encoding = EncodingEngine(
                loaded,
                self.config.task,
                max_batch=self.config.max_batch,
                max_queue=self.config.max_queue,
            )
            self.encoding.start()
        self.loaded = loaded
        log.info("model ready in %.1f s", time.monotonic() - started)

    def stop(self) -> None:
        for engine in (self.generation, self.encoding):
            if engine is not None:
                engine.stop()


@torch.inference_mode()
def _warm_up(loaded: LoadedModel) -> None:
    inputs = loaded.tokenizer("hello", return_tensors="pt").to(loaded.device)
    loaded.model(**inputs)
