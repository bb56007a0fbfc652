"""Runtimes by name, and the choice of one for a model artifact on given resources.

``transformers`` is imported lazily: it pulls in torch, and it may not be installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.base import Runtime
from regolo.server.runtimes.external import ExternalRuntime
from regolo.server.runtimes.llamacpp import LlamaCppRuntime
from regolo.server.runtimes.vllm import VllmRuntime
from regolo.server.specs import ModelArtifact, Resources

# In order of preference when more than one fits: vLLM beats transformers on a GPU.
PREFERENCE: tuple[str, ...] = ("llamacpp", "vllm", "transformers")
_INSTALL_HINTS = {
    "llamacpp": "pip install 'regolo-endpoints[server]' (it brings xllamacpp)",
    "vllm": "pip install vllm, on a machine with an NVIDIA GPU",
    "transformers": "pip install 'regolo-endpoints[transformers]'",
}


def _transformers() -> Runtime:
    module = importlib.import_module("regolo.server.runtimes.transformers")
    runtime: Runtime = module.TransformersRuntime()
    return runtime


_FACTORIES: dict[str, Callable[[], Runtime]] = {
    "llamacpp": LlamaCppRuntime,
    "vllm": VllmRuntime,
    "external": ExternalRuntime,
    "transformers": _transformers,
}


def runtime_names() -> tuple[str, ...]:
    return tuple(_FACTORIES)


def get_runtime(name: str) -> Runtime:
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(sorted(_FACTORIES))
        raise ValidationFailed(f"unknown runtime {name!r} (known: {known})", param="runtime")
    try:
        return factory()
    except ImportError:
        raise ValidationFailed(
            f"runtime {name!r} is not installed here: {_INSTALL_HINTS.get(name, '')}",
            param="runtime",
        ) from None


def _installed(names: Sequence[str]) -> list[Runtime]:
    runtimes = []
    for name in names:
        try:
            runtimes.append(get_runtime(name))
        except ValidationFailed:
            continue
    return runtimes


def choose_runtime(
    artifact: ModelArtifact,
    resources: Resources,
    candidates: Sequence[Runtime] | None = None,
) -> Runtime:
    """The preferred runtime that supports the artifact here and is available.

    GGUF -> llamacpp; safetensors on a GPU -> vllm if available, else transformers;
    safetensors on CPU -> transformers.
    """
    runtimes = list(candidates) if candidates is not None else _installed(PREFERENCE)
    fitting = [runtime for runtime in runtimes if runtime.supports(artifact, resources)]
    for runtime in fitting:
        if runtime.available():
            return runtime
    raise ValidationFailed(_no_runtime_message(artifact, resources, fitting), param="runtime")


def _no_runtime_message(
    artifact: ModelArtifact, resources: Resources, fitting: Sequence[Runtime]
) -> str:
    where = f"{resources.gpu_count} GPU(s)" if resources.gpu_count else "CPU"
    what = f"a {artifact.format} {artifact.task} model on {where}"
    if fitting:
        hints = "; ".join(f"{r.name}: {_INSTALL_HINTS.get(r.name, 'install it')}" for r in fitting)
        return f"no runtime available for {what}; install one of them: {hints}"
    if artifact.format == "safetensors":
        return f"no runtime supports {what}; install {_INSTALL_HINTS['transformers']}"
    return f"no runtime supports {what}; GGUF models serve text generation only"
