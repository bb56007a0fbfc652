from __future__ import annotations

from typing import ClassVar

import pytest

from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.external import ExternalRuntime
from regolo.server.runtimes.llamacpp import LlamaCppRuntime
from regolo.server.runtimes.registry import choose_runtime, get_runtime, runtime_names
from regolo.server.specs import ModelArtifact, Resources

GGUF = ModelArtifact(path="/m/model.gguf", format="gguf")
SAFETENSORS = ModelArtifact(path="/m/model", format="safetensors")
CPU = Resources()
GPU = Resources(gpu_count=1, accelerator="H100-80GB")


class _Stub:
    """A runtime that supports safetensors, with a switchable availability."""

    def __init__(self, name: str, *, available: bool, gpu_only: bool = False) -> None:
        self.name = name  # type: ignore[misc]
        self._available = available
        self._gpu_only = gpu_only

    name: ClassVar[str]

    def available(self) -> bool:
        return self._available

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return artifact.format == "safetensors" and (resources.gpu_count > 0 or not self._gpu_only)

    def launch_command(self, spec, host, port):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_get_runtime_by_name() -> None:
    assert isinstance(get_runtime("llamacpp"), LlamaCppRuntime)
    assert isinstance(get_runtime("external"), ExternalRuntime)
    assert set(runtime_names()) == {"llamacpp", "vllm", "transformers", "external"}


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown runtime 'tensorrt'") as caught:
        get_runtime("tensorrt")
    assert caught.value.param == "runtime"


def test_transformers_is_loaded_lazily_or_refused_clearly() -> None:
    try:
        runtime = get_runtime("transformers")
    except ValidationFailed as error:
        assert "not installed" in error.message
    else:
        assert runtime.name == "transformers"


def test_gguf_goes_to_llamacpp_on_cpu_and_gpu() -> None:
    assert choose_runtime(GGUF, CPU).name == "llamacpp"
    assert choose_runtime(GGUF, GPU).name == "llamacpp"


def test_safetensors_on_gpu_prefers_vllm_when_available() -> None:
    vllm = _Stub("vllm", available=True, gpu_only=True)
    transformers = _Stub("transformers", available=True)
    assert choose_runtime(SAFETENSORS, GPU, [vllm, transformers]) is vllm


def test_safetensors_on_gpu_falls_back_to_transformers() -> None:
    vllm = _Stub("vllm", available=False, gpu_only=True)
    transformers = _Stub("transformers", available=True)
    assert choose_runtime(SAFETENSORS, GPU, [vllm, transformers]) is transformers


def test_safetensors_on_cpu_goes_to_transformers() -> None:
    vllm = _Stub("vllm", available=True, gpu_only=True)
    transformers = _Stub("transformers", available=True)
    assert choose_runtime(SAFETENSORS, CPU, [vllm, transformers]) is transformers


def test_nothing_available_names_what_to_install() -> None:
    transformers = _Stub("transformers", available=False)
    with pytest.raises(ValidationFailed, match="install") as caught:
        choose_runtime(SAFETENSORS, CPU, [LlamaCppRuntime(), transformers])
    assert "transformers" in caught.value.message


def test_gguf_classification_is_refused() -> None:
    artifact = ModelArtifact(path="/m/x.gguf", format="gguf", task="text-classification")
    with pytest.raises(ValidationFailed, match="GGUF models serve text generation only"):
        choose_runtime(artifact, CPU, [LlamaCppRuntime()])
