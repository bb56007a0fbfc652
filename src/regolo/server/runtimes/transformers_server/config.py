"""Command-line options of the server, parsed once into a frozen config."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Literal

Task = Literal["text-generation", "text-classification", "feature-extraction"]
TASKS: tuple[Task, ...] = ("text-generation", "text-classification", "feature-extraction")
# The token travels in the environment so that it never shows in a process listing.
API_KEY_ENV = "REGOLO_REPLICA_API_KEY"


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    model: str  # a directory of safetensors or a .gguf file
    task: Task = "text-generation"
    served_model_name: str = "model"
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str = ""
    device: str = "cpu"
    max_batch: int = 8
    dtype: str = "auto"
    batch_wait_ms: float = 0.0  # how long an idle engine waits to gather a first batch
    max_queue: int = 256


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="regolo.server.runtimes.transformers_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", choices=TASKS, default="text-generation")
    parser.add_argument("--served-model-name", default="model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto"
    )
    parser.add_argument("--batch-wait-ms", type=float, default=0.0)
    parser.add_argument("--max-queue", type=int, default=256)
    args = parser.parse_args(argv)
    if args.max_batch < 1:
        parser.error("--max-batch must be at least 1")
    return ServerConfig(
        model=args.model,
        task=args.task,
        served_model_name=args.served_model_name,
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV, ""),
        device=args.device,
        max_batch=args.max_batch,
        dtype=args.dtype,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
    )
