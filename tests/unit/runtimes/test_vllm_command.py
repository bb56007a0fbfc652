from __future__ import annotations

import pytest

from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.vllm import API_KEY_ENV, VllmRuntime
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources

ARTIFACT = ModelArtifact(
    path="/home/models/qwen", format="safetensors", served_model_name="qwen", context_length=32768
)


def _spec(**changes: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "replica_id": "r-1",
        "deployment_id": "d-1",
        "runtime": "vllm",
        "artifact": ARTIFACT,
        "resources": Resources(gpu_count=2, accelerator="H100-80GB"),
        "auth_token": "s3cret",
    }
    fields.update(changes)
    return ReplicaSpec(**fields)  # type: ignore[arg-type]


def test_argv() -> None:
    command = VllmRuntime().launch_command(_spec(), "127.0.0.1", 8001)
    assert command.argv[0].endswith("vllm")
    assert command.argv[1:] == (
        "serve",
        "/home/models/qwen",
        "--served-model-name",
        "qwen",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
        "--tensor-parallel-size",
        "2",
        "--dtype",
        "auto",
        "--max-model-len",
        "32768",
    )
    assert dict(command.env) == {API_KEY_ENV: "s3cret"}
    assert "s3cret" not in command.argv


def test_options_override() -> None:
    spec = _spec(
        options=(("max_model_len", "4096"), ("gpu_memory_utilization", "0.8"), ("dtype", "half"))
    )
    argv = VllmRuntime().launch_command(spec, "127.0.0.1", 1).argv
    assert argv[argv.index("--max-model-len") + 1] == "4096"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.8"
    assert argv[argv.index("--dtype") + 1] == "half"
    assert "--trust-remote-code" not in argv


def test_trust_remote_code_only_when_the_artifact_allows_it() -> None:
    artifact = ModelArtifact(path="/m", format="safetensors", trust_remote_code=True)
    argv = VllmRuntime().launch_command(_spec(artifact=artifact), "127.0.0.1", 1).argv
    assert "--trust-remote-code" in argv
    assert "--max-model-len" not in argv


@pytest.mark.parametrize(
    "options",
    [(("gpu_memory_utilization", "1.5"),), (("dtype", "int3"),), (("tensor_parallel", "2"),)],
)
def test_bad_options(options: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ValidationFailed):
        VllmRuntime().launch_command(_spec(options=options), "127.0.0.1", 1)


def test_supports_safetensors_generation_on_gpu_only() -> None:
    runtime = VllmRuntime()
    assert runtime.supports(ARTIFACT, Resources(gpu_count=1))
    assert not runtime.supports(ARTIFACT, Resources())
    assert not runtime.supports(ModelArtifact(path="a.gguf", format="gguf"), Resources(gpu_count=1))
    classifier = ModelArtifact(path="/m", format="safetensors", task="text-classification")
    assert not runtime.supports(classifier, Resources(gpu_count=1))
