"""Issue 12: replicas as Ray actors on a multi-node Ray cluster on this machine.

One ``ray.cluster_utils.Cluster`` for the module: a head without CPUs (so replicas land
on worker nodes), a CPU node and an L4 node (``accelerator:L4-24GB``). Replicas run a
tiny fake OpenAI server instead of a model (``fake_runtimes``), so the control plane,
health checker and gateway are real and the machine stays light.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import psutil
import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from sqlalchemy import select  # noqa: E402

from regolo.server.backends.launcher import launcher_argv  # noqa: E402
from regolo.server.backends.parent_guard import guarded_argv  # noqa: E402
from regolo.server.backends.ray import RayBackend  # noqa: E402
from regolo.server.backends.ray_actor import bind_host  # noqa: E402
from regolo.server.backends.ray_resources import (  # noqa: E402
    capacity_of,
    check_feasible,
    check_free,
    demand_of,
)
from regolo.server.demo import demo_gguf_path  # noqa: E402
from regolo.server.errors import Unavailable, ValidationFailed  # noqa: E402
from regolo.server.settings import Settings  # noqa: E402
from regolo.server.specs import (  # noqa: E402
    LaunchCommand,
    ModelArtifact,
    ObservedReplica,
    ReplicaSpec,
    Resources,
)
from regolo.server.store.tables import Replica  # noqa: E402
from tests.support.live import LiveServer, live_server  # noqa: E402

REPO_ROOT = str(Path(__file__).resolve().parents[2])
NAMESPACE = "regolo-tests"
L4 = {"accelerator:L4-24GB": 1.0}
FAST: dict[str, Any] = {"health_probe_timeout_seconds": 2.0, "replica_start_timeout_seconds": 60.0}
T = TypeVar("T")

pytestmark = pytest.mark.timeout(420)


class FakeServerRuntime:
    """Serves ``hello from <replica_id>`` on the port it is given (loopback only)."""

    name: ClassVar[str] = "fake-server"

    def available(self) -> bool:
        return True

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return True

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        argv = (sys.executable, "-m", "tests.support.fake_openai_server")
        return LaunchCommand(
            argv=(*argv, "--port", str(port), "--id", spec.replica_id),
            env=(("PYTHONPATH", REPO_ROOT),),
        )


def fake_runtimes(name: str) -> FakeServerRuntime:
    """Every runtime name serves the fake server (runs on the Ray node, imported by name)."""
    return FakeServerRuntime()


class MissingRuntime(FakeServerRuntime):
    def available(self) -> bool:
        return False  # e.g. vLLM not installed on the node Ray picked


def missing_runtimes(name: str) -> MissingRuntime:
    return MissingRuntime()


@dataclass
class RayTestCluster:
    cluster: Cluster
    nodes: dict[str, Any] = field(default_factory=dict)  # "cpu" | "l4" -> ray Node

    def node_id(self, label: str) -> str:
        return str(self.nodes[label].node_id)

    def label_of(self, node_id: str | None) -> str | None:
        return next((k for k, n in self.nodes.items() if n.node_id == node_id), None)

    def add(self, label: str) -> None:
        extra: dict[str, Any] = {"num_gpus": 1, "resources": L4} if label == "l4" else {}
        self.nodes[label] = self.cluster.add_node(num_cpus=3, env_vars=_node_env(), **extra)
        self.cluster.wait_for_nodes()


def _node_env() -> dict[str, str]:
    # Ray workers import the test runtime (``fake_runtimes``) by module name.
    return {"PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayTestCluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "env_vars": _node_env(),
            # Notice a killed node within seconds rather than tens of seconds.
            "_system_config": {
                "health_check_initial_delay_ms": 1000,
                "health_check_period_ms": 1000,
                "health_check_timeout_ms": 1000,
                "health_check_failure_threshold": 3,
            },
        },
    )
    state = RayTestCluster(cluster)
    try:
        state.add("cpu")
        state.add("l4")
        cluster.connect(namespace=NAMESPACE)
        yield state
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def backend(ray_cluster: RayTestCluster, home: Path) -> RayBackend:
    return RayBackend(
        Settings(home=home), runtimes=fake_runtimes, namespace=NAMESPACE, ready_timeout_seconds=60
    )


def _wait(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _live_replicas(server: LiveServer) -> list[Replica]:
    with server.platform.db.read() as session:
        query = select(Replica).where(Replica.stopped_at.is_(None)).order_by(Replica.created_at)
        return list(session.scalars(query))


def _ready(server: LiveServer, count: int) -> list[Replica] | None:
    replicas = _live_replicas(server)
    ready = [r for r in replicas if r.state == "ready"]
    return ready if len(ready) == count == len(replicas) else None


def _named_actors() -> set[str]:
    return {
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE
    }


def _deploy(server: LiveServer, name: str, **config: Any) -> None:
    path = demo_gguf_path()
    if path is None:
        pytest.skip("the demo model is not installed")
    with server.client() as http:
        added = http.post("/v1/library/models", json={"url": str(path), "name": "smol"})
        assert added.status_code in (201, 409), added.text
        created = http.post("/v1/endpoints", json={"name": name, "model": "smol", **config})
        assert created.status_code == 201, created.text


def _chat(server: LiveServer, endpoint: str) -> str:
    with server.client() as http:
        response = http.post(
            f"/endpoints/{endpoint}/v1/chat/completions",
            json={"model": "smol", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_three_replicas_spread_over_nodes_and_serve_through_the_gateway(
    ray_cluster: RayTestCluster, backend: RayBackend, home: Path
) -> None:
    with live_server(home, backend=backend, **FAST) as server:
        _deploy(server, "chat", replicas=3)
        server.wait_ready("chat", timeout=180)
        replicas = _wait(lambda: _ready(server, 3), 60, "3 ready replicas")

        nodes = {ray_cluster.label_of(r.node) for r in replicas}
        assert nodes == {"cpu", "l4"}, f"replicas on {nodes}: not spread"
        assert all(r.backend == "ray" and r.address for r in replicas)
        assert _named_actors() >= {r.id for r in replicas}

        answers = {_chat(server, "chat") for _ in range(30)}
        assert answers <= {f"hello from {r.id}" for r in replicas}
        assert len(answers) >= 2, f"the gateway used only {answers}"

        assert "fake upstream" in backend.logs(_handle(replicas[0]))
        assert backend.capacity().gpus == {"L4-24GB": 1}
    _wait(lambda: not _named_actors(), 60, "no replica left behind after the platform stopped")


@pytest.mark.slow
def test_the_real_llamacpp_runtime_serves_from_a_ray_node(
    ray_cluster: RayTestCluster, home: Path
) -> None:
    backend = RayBackend(Settings(home=home), namespace=NAMESPACE)  # the real runtimes
    with live_server(home, backend=backend, **FAST) as server:
        _deploy(server, "real", replicas=1)
        server.wait_ready("real", timeout=180)
        (replica,) = _live_replicas(server)
        assert ray_cluster.label_of(replica.node) in ("cpu", "l4")
        with server.client() as http:
            response = http.post(
                "/endpoints/real/v1/chat/completions",
                json={
                    "model": "smol",
                    "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 4,
                },
            )
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"]
        # The replica demands its own token, also on its Ray node.
        with server.client(key="not-the-token") as http:
            assert http.post(f"{replica.address}/v1/chat/completions", json={}).status_code == 401


def test_accelerators_place_replicas_and_a_missing_one_stays_pending(
    ray_cluster: RayTestCluster, backend: RayBackend, home: Path
) -> None:
    with live_server(home, backend=backend, **FAST) as server:
        _deploy(server, "on-l4", instance_type="l4-24gb-x1")
        _deploy(server, "on-h100", instance_type="h100-80gb-x1")
        server.wait_ready("on-l4", timeout=180)
        (replica,) = _wait(lambda: _ready(server, 1), 60, "the L4 replica")
        assert replica.node == ray_cluster.node_id("l4")

        def pending_reason() -> str | None:
            with server.client() as http:
                body = http.get("/v1/endpoints/on-h100").json()
            reason = body.get("status_reason") or ""
            return reason if body["status"] == "pending" and reason else None

        reason = _wait(pending_reason, 30, "a reason for the pending H100 endpoint")
        assert "no node has resource accelerator:H100-80GB" in reason
        time.sleep(3)  # it stays pending, and nothing of it was left running
        with server.client() as http:
            assert http.get("/v1/endpoints/on-h100").json()["status"] == "pending"
        assert len(_live_replicas(server)) == 1


def test_a_lost_node_moves_its_replicas_without_duplicates_when_it_returns(
    ray_cluster: RayTestCluster, backend: RayBackend, home: Path
) -> None:
    with live_server(home, backend=backend, **FAST) as server:
        _deploy(server, "chat", replicas=3)
        server.wait_ready("chat", timeout=180)
        before = _wait(lambda: _ready(server, 3), 60, "3 ready replicas")
        by_node: dict[str, list[Replica]] = {}
        for replica in before:
            by_node.setdefault(ray_cluster.label_of(replica.node) or "?", []).append(replica)
        lost_label = max(by_node, key=lambda label: len(by_node[label]))
        lost = by_node[lost_label]

        ray_cluster.cluster.remove_node(ray_cluster.nodes.pop(lost_label), allow_graceful=False)

        def moved() -> list[Replica] | None:
            ready = _ready(server, 3)
            if ready and not {r.id for r in lost} & {r.id for r in ready}:
                return ready
            return None

        after = _wait(moved, 120, "the lost node's replicas to be replaced")
        # Ray's node state said so, not only failed probes.
        assert all(
            r.state == "failed" and (r.reason or "").startswith("process exited")
            for r in _rows(server, [r.id for r in lost])
        )
        assert all(ray_cluster.label_of(r.node) not in (lost_label, None) for r in after)
        _wait(
            lambda: not any(psutil.pid_exists(r.pid) for r in lost if r.pid),
            30,
            "the lost node's replica processes to end",
        )
        assert {_chat(server, "chat") for _ in range(10)} <= {f"hello from {r.id}" for r in after}

        ray_cluster.add(lost_label)  # the node comes back
        time.sleep(5)  # several reconcile and health ticks
        final = _ready(server, 3)
        assert final is not None and {r.id for r in final} == {r.id for r in after}
        assert _named_actors() == {r.id for r in after}


def test_a_new_control_plane_re_adopts_replicas_by_name_and_drops_dead_ones(
    ray_cluster: RayTestCluster, home: Path
) -> None:
    def fresh_backend() -> RayBackend:  # as after a restart: no actor handles in memory
        return RayBackend(Settings(home=home), runtimes=fake_runtimes, namespace=NAMESPACE)

    artifact = ModelArtifact(path=str(home / "none.gguf"), format="gguf")
    specs = [
        ReplicaSpec(replica_id=f"adopt-{i}", deployment_id="dep", runtime="x", artifact=artifact)
        for i in range(2)
    ]
    kept, killed = (asyncio.run(fresh_backend().start(spec)) for spec in specs)
    assert kept.node and kept.pid and kept.address.startswith("http://127.0.0.1:")

    restarted = fresh_backend()
    assert restarted.adopt(kept)
    assert not restarted.adopt(dataclasses.replace(kept, pid=1))  # someone else's process
    os.kill(killed.pid or 0, signal.SIGKILL)

    def killed_seen_dead() -> list[ObservedReplica] | None:
        observed = asyncio.run(restarted.observe([kept, killed]))
        return None if observed[1].alive else observed

    observed = _wait(killed_seen_dead, 30, "the killed replica to be observed dead")
    assert observed[0].alive and observed[1].exit_code == -signal.SIGKILL
    assert not restarted.adopt(killed)  # and its actor is released (ray.kill is asynchronous)
    _wait(lambda: _named_actors() == {"adopt-0"}, 60, "the dead replica's actor to be released")

    asyncio.run(restarted.stop(kept, drain_seconds=0.5))
    asyncio.run(restarted.stop(kept, drain_seconds=0.5))  # idempotent
    _wait(lambda: not _named_actors(), 60, "the stopped replica's actor to be released")
    assert not restarted.adopt(kept)
    assert not asyncio.run(restarted.observe([kept]))[0].alive


def test_a_runtime_the_node_lacks_is_refused_and_leaves_nothing_behind(
    ray_cluster: RayTestCluster, home: Path
) -> None:
    backend = RayBackend(Settings(home=home), runtimes=missing_runtimes, namespace=NAMESPACE)
    artifact = ModelArtifact(path=str(home / "none.gguf"), format="gguf")
    spec = ReplicaSpec(
        replica_id="no-runtime", deployment_id="d", runtime="vllm", artifact=artifact
    )
    with pytest.raises(ValidationFailed, match="runtime 'vllm' is not available"):
        asyncio.run(backend.start(spec))
    _wait(
        lambda: "no-runtime" not in _named_actors(),
        60,
        "the refused replica's actor to be released",
    )


def test_demands_and_feasibility() -> None:
    gpu = demand_of(Resources(gpu_count=2, accelerator="H100-80GB", memory_request_bytes=2**30))
    assert gpu.as_resources() == {
        "CPU": 1.0,
        "GPU": 2.0,
        "memory": float(2**30),
        "accelerator:H100-80GB": 2.0,
    }
    assert demand_of(Resources(cpu_request=0.5, accelerator="cpu")).as_resources() == {"CPU": 0.5}
    cpu_node = {"CPU": 8.0, "memory": 16.0 * 2**30}
    one_h100 = {"CPU": 8.0, "GPU": 1.0, "accelerator:H100-80GB": 1.0, "memory": 64.0 * 2**30}
    check_feasible(demand_of(Resources(cpu_request=2)), [cpu_node])
    with pytest.raises(Unavailable, match="no node has resource accelerator:H100-80GB"):
        check_feasible(gpu, [cpu_node])
    with pytest.raises(Unavailable, match="no node has 2 of "):
        check_feasible(gpu, [cpu_node, one_h100])
    with pytest.raises(Unavailable, match="not enough free CPU"):
        check_free(demand_of(Resources(cpu_request=4)), {"CPU": 3.0})
    assert capacity_of({"CPU": 6.0, "accelerator:L4-24GB": 2.0}).gpus == {"L4-24GB": 2}


def test_parent_guard_runs_the_replica_only_while_its_parent_lives() -> None:
    argv = guarded_argv(os.getpid(), launcher_argv(None, None, ["/bin/echo", "serving"]))
    ran = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (ran.returncode, ran.stdout.strip()) == (0, "serving")
    orphan = guarded_argv(1, launcher_argv(None, None, ["/bin/echo", "serving"]))
    refused = subprocess.run(orphan, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and "parent is gone" in refused.stderr
    assert not refused.stdout
    assert bind_host("10.0.0.7", "10.0.0.7") == "127.0.0.1"
    assert bind_host("10.0.0.8", "10.0.0.7") == "10.0.0.8"


def _rows(server: LiveServer, ids: list[str]) -> list[Replica]:
    with server.platform.db.read() as session:
        return list(session.scalars(select(Replica).where(Replica.id.in_(ids))))


def _handle(replica: Replica):  # type: ignore[no-untyped-def]
    from regolo.server.control.reconciler import handle_of

    return handle_of(replica)
