import sys

from regolo.server.runtimes.transformers import TransformersRuntime, thread_count
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources


def _spec(**overrides) -> ReplicaSpec:
    fields = {
        "replica_id": "r1",
        "deployment_id": "d1",
        "runtime": "transformers",
        "artifact": ModelArtifact(
            path="/models/clf",
            format="safetensors",
            task="text-classification",
            served_model_name="sentiment-classifier",
        ),
        "resources": Resources(cpu_limit=2.5),
        "auth_token": "tok-123",
    }
    return ReplicaSpec(**(fields | overrides))


def test_command_runs_our_server_module_with_the_model() -> None:
    command = TransformersRuntime().launch_command(_spec(), "127.0.0.1", 4100)
    argv = list(command.argv)
    assert argv[:3] == [sys.executable, "-m", "regolo.server.runtimes.transformers_server"]
    assert argv[argv.index("--model") + 1] == "/models/clf"
    assert argv[argv.index("--task") + 1] == "text-classification"
    assert argv[argv.index("--served-model-name") + 1] == "sentiment-classifier"
    assert argv[argv.index("--port") + 1] == "4100"
    assert argv[argv.index("--device") + 1] == "cpu"
    assert command.health_path == "/health"


def test_token_travels_in_env_never_in_argv() -> None:
    command = TransformersRuntime().launch_command(_spec(), "127.0.0.1", 4100)
    assert "tok-123" not in " ".join(command.argv)
    env = dict(command.env)
    assert env["REGOLO_REPLICA_API_KEY"] == "tok-123"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TOKENIZERS_PARALLELISM"] == "false"
    assert env["OMP_NUM_THREADS"] == "2"


def test_gpu_resources_select_cuda_and_options_become_flags() -> None:
    spec = _spec(resources=Resources(gpu_count=1), options=(("max_batch", "16"), ("evil", "x")))
    argv = list(TransformersRuntime().launch_command(spec, "127.0.0.1", 1).argv)
    assert argv[argv.index("--device") + 1] == "cuda"
    assert argv[argv.index("--max-batch") + 1] == "16"
    assert "evil" not in " ".join(argv)


def test_supports_safetensors_tasks_and_gguf_generation_only() -> None:
    runtime, cpu = TransformersRuntime(), Resources()
    for task in ("text-generation", "text-classification", "feature-extraction"):
        assert runtime.supports(ModelArtifact(path="m", format="safetensors", task=task), cpu)
    assert runtime.supports(ModelArtifact(path="m.gguf", format="gguf"), cpu)
    gguf_clf = ModelArtifact(path="m.gguf", format="gguf", task="text-classification")
    assert not runtime.supports(gguf_clf, cpu)
    remote = ModelArtifact(path="m", format="safetensors", trust_remote_code=True)
    assert not runtime.supports(remote, cpu)


def test_thread_count_rounds_down_and_is_at_least_one() -> None:
    assert thread_count(Resources()) == 1
    assert thread_count(Resources(cpu_limit=0.5)) == 1
    assert thread_count(Resources(cpu_request=3.9)) == 3
    assert thread_count(Resources(cpu_request=1, cpu_limit=4)) == 4


def test_available_when_torch_and_transformers_are_installed() -> None:
    assert TransformersRuntime().available()
    assert TransformersRuntime.name == "transformers"
