from __future__ import annotations

import sys

import pytest

from regolo.server.errors import ValidationFailed
from regolo.server.runtimes.llamacpp import LlamaCppRuntime
from regolo.server.runtimes.llamacpp_main import TOKEN_ENV, busy_requests, parse_args
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources


def _spec(**changes: object) -> ReplicaSpec:
    fields: dict[str, object] = {
        "replica_id": "r-1",
        "deployment_id": "d-1",
        "runtime": "llamacpp",
        "artifact": ModelArtifact(path="/m/a.gguf", format="gguf", served_model_name="smol"),
        "auth_token": "s3cret",
    }
    fields.update(changes)
    return ReplicaSpec(**fields)  # type: ignore[arg-type]


def _args(spec: ReplicaSpec) -> dict[str, str]:
    argv = LlamaCppRuntime().launch_command(spec, "127.0.0.1", 4321).argv
    assert argv[:3] == (sys.executable, "-m", "regolo.server.runtimes.llamacpp_main")
    pairs = argv[3:]
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def test_defaults() -> None:
    assert _args(_spec()) == {
        "--model": "/m/a.gguf",
        "--host": "127.0.0.1",
        "--port": "4321",
        "--served-model-name": "smol",
        "--parallel": "4",
        "--ctx-size": "2048",
        "--threads": "0",
        "--n-gpu-layers": "0",
        "--default-max-tokens": "512",
        "--http-threads": "64",
    }


def test_http_threads_is_an_option() -> None:
    spec = _spec(options=(("http_threads", "16"),))
    assert _args(spec)["--http-threads"] == "16"
    assert parse_args(["--model", "m", "--port", "1"]).http_threads == 64


def test_default_max_tokens_is_an_option() -> None:
    spec = _spec(options=(("default_max_tokens", "64"),))
    assert _args(spec)["--default-max-tokens"] == "64"


def test_token_travels_in_the_environment_not_argv() -> None:
    command = LlamaCppRuntime().launch_command(_spec(), "127.0.0.1", 1)
    assert "s3cret" not in " ".join(command.argv)
    assert dict(command.env)[TOKEN_ENV] == "s3cret"
    assert command.health_path == "/health"


def test_options_and_resources() -> None:
    spec = _spec(
        options=(("parallel", "8"), ("ctx_size", "4096")),
        resources=Resources(cpu_limit=1.5, gpu_count=1),
    )
    args = _args(spec)
    assert (args["--parallel"], args["--ctx-size"]) == ("8", "4096")
    assert args["--threads"] == "2"  # whole cores for 1.5
    assert args["--n-gpu-layers"] == "999"


def test_context_capped_by_the_model() -> None:
    artifact = ModelArtifact(path="/m/a.gguf", format="gguf", context_length=1024)
    assert _args(_spec(artifact=artifact))["--ctx-size"] == "1024"


@pytest.mark.parametrize(
    "options",
    [(("parallel", "0"),), (("parallel", "many"),), (("flash", "1"),), (("ctx_size", "-5"),)],
)
def test_bad_options_are_refused(options: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        LlamaCppRuntime().launch_command(_spec(options=options), "127.0.0.1", 1)
    assert caught.value.param is not None and caught.value.param.startswith("options.")


def test_supports_only_gguf_text_generation() -> None:
    runtime = LlamaCppRuntime()
    assert runtime.available()
    assert runtime.supports(ModelArtifact(path="a.gguf", format="gguf"), Resources())
    assert not runtime.supports(ModelArtifact(path="m", format="safetensors"), Resources())


def test_entrypoint_parses_what_the_runtime_builds() -> None:
    argv = LlamaCppRuntime().launch_command(_spec(), "127.0.0.1", 4321).argv
    args = parse_args(argv[3:])
    assert (args.port, args.parallel, args.served_model_name) == (4321, 4, "smol")


def test_busy_requests_reads_prometheus_text() -> None:
    text = (
        "# HELP llamacpp:requests_processing x\n"
        "llamacpp:requests_processing 2\n"
        "llamacpp:requests_deferred 1\n"
        "llamacpp:n_decode_total 40\n"
    )
    assert busy_requests(text) == 3
    assert busy_requests("") == 0
