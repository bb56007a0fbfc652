"""Bring your own server: the replica is an OpenAI-compatible server someone else runs.

There is no process to launch; the backend records ``spec.external_url`` as the replica's
address and observes it over HTTP.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from regolo.server.errors import ValidationFailed
from regolo.server.specs import LaunchCommand, ModelArtifact, ReplicaSpec, Resources


def external_address(spec: ReplicaSpec) -> str:
    """The base URL of an external replica, without a trailing slash or ``/v1``."""
    url = (spec.external_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            "runtime 'external' needs external_url, an http(s) URL such as http://10.0.0.5:8000",
            param="external_url",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationFailed(
            "external_url must not carry credentials, a query or a fragment; "
            "the replica token is sent as a bearer header",
            param="external_url",
        )
    base = url.rstrip("/")
    return base.removesuffix("/v1")


class ExternalRuntime:
    name: ClassVar[str] = "external"

    def available(self) -> bool:
        return True

    def supports(self, artifact: ModelArtifact, resources: Resources) -> bool:
        return True  # whatever runs there is the owner's choice

    def launch_command(self, spec: ReplicaSpec, host: str, port: int) -> LaunchCommand:
        raise ValidationFailed(
            "runtime 'external' launches nothing; its replica is at external_url",
            param="runtime",
        )
