"""The ``transformers`` runtime: our own OpenAI-compatible server over Hugging Face transformers.

It serves safetensors models for all three tasks and GGUF text-generation models (which
transformers dequantizes on load), on CPU or on one GPU. The server lives in
``regolo.server.runtimes.transformers_server``; this module only builds its command line.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from typing import ClassVar

from regolo.server.runtimes.transformers_server.config import API_KEY_ENV
from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaSpec, Resources

SERVER_MODULE = "regolo.server.runtimes.transformers_server"
OPTION_FLAGS = {"max_batch": "--max-batch", "dtype": "--dtype", "batch_wait_ms": "--batch-wait-ms"}


class TransformersRuntime:
    name: ClassVar[str] = "transformers"

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) for module in ("torch", "transformers"))

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        if artifact.trust_remote_code:
            return False  # this runtime never runs code shipped with a model
        if artifact.format == "gguf":
            return artifact.task == "text-generation"
        return artifact.format == "safetensors"

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        artifact = spec.artifact
        argv = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--model",
            artifact.path,
            "--task",
            artifact.task,
            "--served-model-name",
            artifact.served_model_name,
            "--host",
            host,
            "--port",
            str(port),
            "--device",
            "cuda" if spec.resources.gpu_count > 0 else "cpu",
            *option_args(spec.options),
        ]
        return LaunchCommand(argv=tuple(argv), env=launch_env(spec), health_path="/health")


def option_args(options: tuple[tuple[str, str], ...]) -> list[str]:
    """Known runtime options as flags; unknown ones are ignored rather than passed through."""
    args: list[str] = []
    for key, value in options:
        flag = OPTION_FLAGS.get(key)
        if flag is not None:
            args += [flag, value]
    return args


def thread_count(resources: Resources) -> int:
    """Torch threads: the CPU limit (rounded down, at least one), else the request, else 1."""
    cores = resources.cpu_limit or resources.cpu_request or 1.0
    return max(1, math.floor(cores))


def launch_env(spec: ReplicaSpec) -> tuple[tuple[str, str], ...]:
    threads = str(thread_count(spec.resources))
    env = [
        ("OMP_NUM_THREADS", threads),
        ("MKL_NUM_THREADS", threads),
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ]
    if spec.auth_token:
        env.append((API_KEY_ENV, spec.auth_token))
    return tuple(env)
