"""The environment a replica process gets: a short allowlist of the parent's, never its
secrets (database URL, admin keys, cloud credentials), plus what the runtime asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

REPLICA_ID_ENV = "REGOLO_REPLICA_ID"
_ALLOWED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LANG",
        "TZ",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "HF_HOME",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "TRANSFORMERS_OFFLINE",
    }
)
_ALLOWED_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "OMP_", "MKL_", "XDG_", "GGML_", "LLAMA_")


def replica_environment(
    parent: Mapping[str, str],
    launch_env: Iterable[tuple[str, str]],
    replica_id: str,
    gpu_indices: tuple[int, ...] | None,
) -> dict[str, str]:
    env = {
        key: value
        for key, value in parent.items()
        if key in _ALLOWED or key.startswith(_ALLOWED_PREFIXES)
    }
    env.update(launch_env)
    env[REPLICA_ID_ENV] = replica_id
    # Unbuffered, so the log file shows a crash's last words.
    env["PYTHONUNBUFFERED"] = "1"
    if gpu_indices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index) for index in gpu_indices)
    return env
