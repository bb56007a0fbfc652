"""llama.cpp for GGUF models: llama.cpp's C++ server (continuous batching, parallel
slots) through the prebuilt ``xllamacpp`` wheel, in a child process."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Mapping
from typing import ClassVar

from regolo.server.runtimes import int_option, spec_options
from regolo.server.runtimes.llamacpp_main import TOKEN_ENV
from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaSpec, Resources

OPTIONS: dict[str, type] = {
    "parallel": int,
    "ctx_size": int,
    "threads": int,
    "n_gpu_layers": int,
    "default_max_tokens": int,
    "http_threads": int,
}
DEFAULT_PARALLEL = 4
# llama.cpp's HTTP server gives each connection a thread of a fixed pool, idle keep-alive
# ones included, and its default pool is parallel + 2. The gateway, the batch runner and
# the health checker each keep connections open to a replica, so with that default an
# eighth connection waited for an idle one to time out: a 5 to 7 s stall, seen at 8
# concurrent requests. Idle threads cost only their stacks.
DEFAULT_HTTP_THREADS = 64
DEFAULT_CTX_SIZE = 2048  # tokens per slot, unless the model's own context is shorter
# Tokens generated for a request that sets no max_tokens (llama.cpp would otherwise fill
# the whole slot); a request's own max_tokens still goes beyond it.
DEFAULT_MAX_TOKENS = 512
ALL_LAYERS = 999  # llama.cpp caps it at the model's layer count

Options = Mapping[str, int | float | str]


class LlamaCppRuntime:
    name: ClassVar[str] = "llamacpp"

    def available(self) -> bool:
        return importlib.util.find_spec("xllamacpp") is not None

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return artifact.format == "gguf" and artifact.task == "text-generation"

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        options = spec_options(spec, OPTIONS)
        argv = (
            sys.executable,
            "-m",
            "regolo.server.runtimes.llamacpp_main",
            *("--model", spec.artifact.path),
            *("--host", host),
            *("--port", str(port)),
            *("--served-model-name", spec.artifact.served_model_name),
            *("--parallel", str(int_option(options, "parallel", DEFAULT_PARALLEL))),
            *("--ctx-size", str(_ctx_size(spec.artifact, options))),
            *("--threads", str(_threads(spec.resources, options))),
            *("--n-gpu-layers", str(_gpu_layers(spec.resources, options))),
            *(
                "--default-max-tokens",
                str(int_option(options, "default_max_tokens", DEFAULT_MAX_TOKENS)),
            ),
            *("--http-threads", str(int_option(options, "http_threads", DEFAULT_HTTP_THREADS))),
        )
        return LaunchCommand(argv=argv, env=((TOKEN_ENV, spec.auth_token),), health_path="/health")


def _ctx_size(artifact: ModelArtifact, options: Options) -> int:
    if "ctx_size" in options:
        return int_option(options, "ctx_size", DEFAULT_CTX_SIZE)
    if artifact.context_length:
        return min(DEFAULT_CTX_SIZE, artifact.context_length)
    return DEFAULT_CTX_SIZE


def _threads(resources: Resources, options: Options) -> int:
    """Whole cores for a fractional CPU limit; 0 lets llama.cpp decide."""
    if "threads" in options:
        return int_option(options, "threads", 1)
    if resources.cpu_limit is None:
        return 0
    return max(1, math.ceil(resources.cpu_limit))


def _gpu_layers(resources: Resources, options: Options) -> int:
    if "n_gpu_layers" in options:
        return int_option(options, "n_gpu_layers", ALL_LAYERS, minimum=0)
    return ALL_LAYERS if resources.gpu_count > 0 else 0
