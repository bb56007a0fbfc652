"""GPU discovery on this machine, through ``nvidia-smi`` (no CUDA library is loaded)."""

from __future__ import annotations

import functools
import shutil
import subprocess

_QUERY_TIMEOUT_SECONDS = 10.0


def parse_gpu_names(nvidia_smi_csv: str) -> dict[str, int]:
    """``name`` column of ``nvidia-smi --query-gpu=name --format=csv,noheader`` -> counts."""
    counts: dict[str, int] = {}
    for line in nvidia_smi_csv.splitlines():
        name = line.strip()
        if name:
            counts[name] = counts.get(name, 0) + 1
    return counts


@functools.cache
def detect_gpus() -> dict[str, int]:
    """Accelerator name -> count; empty without NVIDIA GPUs. Cached: GPUs do not hotplug."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return {}
    try:
        done = subprocess.run(
            [binary, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_QUERY_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_gpu_names(done.stdout) if done.returncode == 0 else {}


def gpu_count() -> int:
    return sum(detect_gpus().values())
