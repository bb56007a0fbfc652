"""Typed specs that cross module and process boundaries: replicas, runtimes, backends.

The reconciler builds a ``ReplicaSpec``; a ``ReplicaBackend`` turns it into a running
process (via a ``Runtime``) and returns a ``ReplicaHandle`` that is stored, so a
restarted control plane can re-adopt it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple

ModelFormat = Literal["gguf", "safetensors"]
ModelTask = Literal["text-generation", "text-classification", "feature-extraction"]


class ReplicaState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class Resources:
    cpu_request: float | None = None  # cores
    cpu_limit: float | None = None
    memory_request_bytes: int | None = None
    memory_limit_bytes: int | None = None
    gpu_count: int = 0
    accelerator: str | None = None  # "H100-80GB", "cpu", ...


@dataclass(frozen=True, kw_only=True)
class ModelArtifact:
    path: str  # a directory (safetensors) or a .gguf file, inside $REGOLO_HOME or an allowed root
    format: ModelFormat
    task: ModelTask = "text-generation"
    served_model_name: str = "model"
    context_length: int | None = None
    trust_remote_code: bool = False


@dataclass(frozen=True, kw_only=True)
class ReplicaSpec:
    replica_id: str
    deployment_id: str
    runtime: str  # "llamacpp" | "transformers" | "vllm" | "external"
    artifact: ModelArtifact
    resources: Resources = field(default_factory=Resources)
    instance_type: str = "cpu-small"
    auth_token: str = ""  # the replica demands it as a bearer token
    options: tuple[tuple[str, str], ...] = ()  # runtime options, e.g. (("parallel", "4"),)
    external_url: str | None = None  # only for runtime "external"


@dataclass(frozen=True, kw_only=True)
class LaunchCommand:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    health_path: str = "/health"


@dataclass(frozen=True, kw_only=True)
class ReplicaHandle:
    replica_id: str
    backend: str
    address: str  # base URL, e.g. "http://127.0.0.1:41234"
    pid: int | None = None
    log_path: str | None = None
    started_at: datetime | None = None
    node: str | None = None


@dataclass(frozen=True, kw_only=True)
class ObservedReplica:
    handle: ReplicaHandle
    alive: bool
    exit_code: int | None = None
    cpu_cores_used: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class Capacity:
    cpu_cores: float
    memory_bytes: int
    gpus: dict[str, int] = field(default_factory=dict)  # accelerator -> count
    unenforced: tuple[str, ...] = ()  # limits the backend cannot enforce here


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: the result of authenticating an API key."""

    account_id: str
    key_id: str
    scopes: frozenset[str]
    is_superadmin: bool = False
    rate_limit_rpm: int | None = None  # requests per minute
    rate_limit_tpm: int | None = None  # tokens per minute

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def can_call(self, endpoint_name: str) -> bool:
        return (
            self.is_admin
            or "inference:*" in self.scopes
            or f"inference:{endpoint_name}" in self.scopes
        )


class UsageRecord(NamedTuple):
    """One gateway request, as recorded for metrics (never for billing: billing is hourly).

    A named tuple: built on every request, so it must be cheap to make, and tuples of
    plain values are dropped from the garbage collector's tracking while they wait in
    the usage buffer.
    """

    at: float  # Unix time in seconds (time.time()): cheaper to take and to bucket than a datetime
    account_id: str
    key_id: str
    endpoint_id: str
    deployment_id: str | None
    version: str | None
    replica_id: str | None
    status_code: int
    latency_ms: float
    time_to_first_token_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit: bool = False
    streamed: bool = False
    complete: bool = True  # False when a stream was cut
