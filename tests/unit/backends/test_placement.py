from __future__ import annotations

import pytest

from regolo.server.backends.environment import REPLICA_ID_ENV, replica_environment
from regolo.server.backends.gpus import parse_gpu_names
from regolo.server.backends.placement import check_fits, check_replica_id, pick_cores, pick_gpus
from regolo.server.errors import Unavailable, ValidationFailed
from regolo.server.specs import Capacity, Resources

CPU_BOX = Capacity(cpu_cores=4, memory_bytes=16 * 2**30)
GPU_BOX = Capacity(cpu_cores=16, memory_bytes=64 * 2**30, gpus={"NVIDIA H100 80GB HBM3": 2})


def test_gpus_on_a_cpu_machine_never_fit() -> None:
    with pytest.raises(ValidationFailed, match="no GPU") as caught:
        check_fits(Resources(gpu_count=1), CPU_BOX, free_gpus=0)
    assert caught.value.param == "resources.gpu_count"


def test_busy_gpus_are_unavailable_for_now() -> None:
    with pytest.raises(Unavailable):
        check_fits(Resources(gpu_count=2), GPU_BOX, free_gpus=1)
    check_fits(Resources(gpu_count=2), GPU_BOX, free_gpus=2)


@pytest.mark.parametrize(
    "resources",
    [Resources(cpu_limit=4.5), Resources(cpu_request=8), Resources(memory_limit_bytes=17 * 2**30)],
)
def test_more_than_the_machine_is_refused(resources: Resources) -> None:
    with pytest.raises(ValidationFailed):
        check_fits(resources, CPU_BOX, free_gpus=0)


def test_pick_cores() -> None:
    assert pick_cores(None, [0, 1, 2, 3], {}) == (0, 1, 2, 3)
    assert pick_cores(1.5, [0, 1, 2, 3], {0: 2, 1: 1}) == (2, 3)
    assert pick_cores(0.1, [0, 1], {0: 1}) == (1,)
    assert pick_cores(64, [0, 1], {}) == (0, 1)


def test_pick_gpus() -> None:
    assert pick_gpus(1, 4, {0, 2}) == (1,)
    assert pick_gpus(0, 4, set()) == ()


@pytest.mark.parametrize("replica_id", ["", "../x", "a/b", ".hidden", "x" * 129, "a\x00b"])
def test_replica_ids_that_are_not_file_names_are_refused(replica_id: str) -> None:
    with pytest.raises(ValidationFailed):
        check_replica_id(replica_id)


def test_environment_keeps_no_secrets() -> None:
    parent = {"PATH": "/bin", "REGOLO_DATABASE_URL": "postgres://u:p@h/db", "AWS_SECRET": "x"}
    env = replica_environment(parent, [("REGOLO_REPLICA_TOKEN", "t")], "r-1", (1,))
    assert env["PATH"] == "/bin"
    assert "REGOLO_DATABASE_URL" not in env and "AWS_SECRET" not in env
    assert env[REPLICA_ID_ENV] == "r-1"
    assert env["REGOLO_REPLICA_TOKEN"] == "t"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in replica_environment({}, [], "r", None)


def test_parse_nvidia_smi() -> None:
    assert parse_gpu_names("NVIDIA H100 80GB HBM3\nNVIDIA H100 80GB HBM3\n\n") == {
        "NVIDIA H100 80GB HBM3": 2
    }
