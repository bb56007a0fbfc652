"""Build a ``ReplicaSpec`` from stored rows: artifact, resources, runtime."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable

from regolo.server.errors import ValidationFailed
from regolo.server.quantities import parse_cpu, parse_memory
from regolo.server.specs import ModelArtifact, ReplicaSpec, Resources
from regolo.server.store.tables import Endpoint, Model, ModelVersion

InstanceLookup = Callable[[str], tuple[int, str | None]]  # instance type -> (gpus, accelerator)


def artifact_for(model: Model, version: ModelVersion) -> ModelArtifact:
    facts = version.facts or {}
    if not version.local_path:
        raise ValidationFailed(f"model {model.name}:{version.version} has no local files yet")
    return ModelArtifact(
        path=version.local_path,
        format=facts.get(
            "format", "gguf" if version.local_path.endswith(".gguf") else "safetensors"
        ),
        task=facts.get("task", "text-generation"),
        served_model_name=model.name,
        context_length=facts.get("context_length"),
        trust_remote_code=version.trust_remote_code,
    )


def resources_for(endpoint: Endpoint, instance: InstanceLookup) -> Resources:
    gpus, accelerator = instance(endpoint.instance_type)
    return Resources(
        cpu_request=parse_cpu(endpoint.cpu_request) if endpoint.cpu_request else None,
        cpu_limit=parse_cpu(endpoint.cpu_limit) if endpoint.cpu_limit else None,
        memory_request_bytes=parse_memory(endpoint.memory_request)
        if endpoint.memory_request
        else None,
        memory_limit_bytes=parse_memory(endpoint.memory_limit) if endpoint.memory_limit else None,
        gpu_count=gpus,
        accelerator=accelerator,
    )


def replica_spec(
    *,
    replica_id: str,
    deployment_id: str,
    runtime: str,
    artifact: ModelArtifact,
    resources: Resources,
    endpoint: Endpoint,
    auth_token: str,
) -> ReplicaSpec:
    options = tuple(sorted((str(k), str(v)) for k, v in (endpoint.runtime_options or {}).items()))
    return ReplicaSpec(
        replica_id=replica_id,
        deployment_id=deployment_id,
        runtime=runtime,
        artifact=artifact,
        resources=resources,
        instance_type=endpoint.instance_type,
        auth_token=auth_token,
        options=options,
        external_url=endpoint.external_url,
    )


def replica_fingerprint(endpoint: Endpoint) -> str:
    """What an endpoint update can change of the replicas it starts (size, runtime and its
    options): replicas started under another fingerprint are replaced, one at a time."""
    shape = [
        endpoint.instance_type,
        endpoint.cpu_request,
        endpoint.cpu_limit,
        endpoint.memory_request,
        endpoint.memory_limit,
        endpoint.runtime,
        sorted((str(k), str(v)) for k, v in (endpoint.runtime_options or {}).items()),
        endpoint.external_url,
    ]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


def new_replica_token() -> str:
    return secrets.token_urlsafe(24)
