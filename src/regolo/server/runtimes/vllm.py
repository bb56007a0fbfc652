"""vLLM for safetensors text generation on NVIDIA GPUs: ``vllm serve`` in a child process."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import ClassVar

from regolo.server.backends.gpus import gpu_count
from regolo.server.errors import ValidationFailed
from regolo.server.runtimes import int_option, spec_options
from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaSpec, Resources

OPTIONS: dict[str, type] = {
    "max_model_len": int,
    "gpu_memory_utilization": float,
    "max_num_seqs": int,
    "dtype": str,
}
# vLLM reads the key from its environment; argv would show it to anyone running `ps`.
API_KEY_ENV = "VLLM_API_KEY"
_DTYPES = frozenset({"auto", "half", "float16", "bfloat16", "float", "float32"})


def vllm_executable() -> str:
    """The ``vllm`` script of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("vllm")
    if beside.exists():
        return str(beside)
    return shutil.which("vllm") or "vllm"


class VllmRuntime:
    name: ClassVar[str] = "vllm"

    def available(self) -> bool:
        return importlib.util.find_spec("vllm") is not None and gpu_count() > 0

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return (
            artifact.format == "safetensors"
            and artifact.task == "text-generation"
            and resources.gpu_count > 0
        )

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        options = spec_options(spec, OPTIONS)
        argv = [
            vllm_executable(),
            "serve",
            spec.artifact.path,
            *("--served-model-name", spec.artifact.served_model_name),
            *("--host", host),
            *("--port", str(port)),
            *("--tensor-parallel-size", str(max(1, spec.resources.gpu_count))),
            *("--dtype", _dtype(options)),
            *_max_model_len(spec.artifact, options),
            *_tuning(options),
        ]
        if spec.artifact.trust_remote_code:
            argv.append("--trust-remote-code")
        env = ((API_KEY_ENV, spec.auth_token),) if spec.auth_token else ()
        return LaunchCommand(argv=tuple(argv), env=env, health_path="/health")


def _dtype(options: dict[str, int | float | str]) -> str:
    dtype = str(options.get("dtype", "auto"))
    if dtype not in _DTYPES:
        raise ValidationFailed(
            f"option 'dtype' must be one of {', '.join(sorted(_DTYPES))}", param="options.dtype"
        )
    return dtype


def _max_model_len(artifact: ModelArtifact, options: dict[str, int | float | str]) -> list[str]:
    if "max_model_len" in options:
        return ["--max-model-len", str(int_option(options, "max_model_len", 1))]
    if artifact.context_length:
        return ["--max-model-len", str(artifact.context_length)]
    return []


def _tuning(options: dict[str, int | float | str]) -> list[str]:
    args: list[str] = []
    if "gpu_memory_utilization" in options:
        utilization = float(options["gpu_memory_utilization"])
        if not 0.0 < utilization <= 1.0:
            raise ValidationFailed(
                "option 'gpu_memory_utilization' must be in (0, 1]",
                param="options.gpu_memory_utilization",
            )
        args += ["--gpu-memory-utilization", str(utilization)]
    if "max_num_seqs" in options:
        args += ["--max-num-seqs", str(int_option(options, "max_num_seqs", 1))]
    return args
