"""The Runtime interface: how a replica serves a model.

A runtime only builds the command and environment of a replica process; a backend runs
it. Every runtime's server speaks the OpenAI HTTP API (``/v1/chat/completions`` with and
without streaming, ``/v1/completions``, ``/v1/models``; ``/v1/embeddings`` where the task
allows), answers ``GET /health`` once the model is loaded, binds the host it is given,
and demands ``Authorization: Bearer <spec.auth_token>`` on the OpenAI routes when the
token is not empty.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaSpec, Resources


class Runtime(Protocol):
    name: ClassVar[str]

    def available(self) -> bool:
        """Whether this machine can run it (packages installed, hardware present)."""
        ...

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool: ...

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand: ...
