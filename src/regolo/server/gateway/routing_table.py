"""The gateway's in-memory routing table: only what a request needs, built once per swap.

The lead builds a ``RoutingTable`` from the store and hands it to ``Gateway.set_table``;
lookups on the hot path are plain dict reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True, kw_only=True)
class RouteReplica:
    """A READY replica; ``address`` is a base URL such as ``http://127.0.0.1:41234``."""

    replica_id: str
    address: str
    auth_token: str = ""

    @cached_property
    def request_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers of every request to this replica, built once per routing table."""
        headers = [(b"content-type", b"application/json")]
        if self.auth_token:
            headers.append((b"authorization", b"Bearer " + self.auth_token.encode()))
        return tuple(headers)


@dataclass(frozen=True, kw_only=True)
class RouteDeployment:
    deployment_id: str
    version: str
    traffic_weight: float
    served_model_name: str
    replicas: tuple[RouteReplica, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RouteEndpoint:
    endpoint_id: str
    name: str
    account_id: str
    model_name: str
    deployments: tuple[RouteDeployment, ...] = ()
    request_timeout_seconds: float = 60.0
    enable_cache: bool = False
    enable_compression: bool = False
    max_concurrency: int = 64
    max_queue: int = 256
    queue_timeout_seconds: float = 30.0
    allowed_key_ids: frozenset[str] | None = None  # None: every inference key of the account
    scaling_hook: Callable[[str], None] | None = None  # called when a request finds no replica

    def has_ready_replica(self) -> bool:
        return self._ready

    @cached_property
    def _ready(self) -> bool:
        # Asked on every request; the endpoint is immutable, so the answer is too.
        return any(d.replicas and d.traffic_weight > 0 for d in self.deployments)


@dataclass(frozen=True)
class RoutingTable:
    endpoints: tuple[RouteEndpoint, ...] = ()
    _by_name: dict[tuple[str, str], RouteEndpoint] = field(init=False, repr=False, compare=False)
    _by_model: dict[tuple[str, str], RouteEndpoint] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, RouteEndpoint] = field(init=False, repr=False, compare=False)
    # Which endpoint a key reached by a name: filled by resolve.resolve_endpoint, and
    # gone with the table, so a swap can never leave a stale answer behind.
    resolved: dict[tuple[str, str | None, str | None], tuple[object, RouteEndpoint]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        by_name = {(e.account_id, e.name): e for e in self.endpoints}
        by_model: dict[tuple[str, str], RouteEndpoint] = {}
        for endpoint in self.endpoints:
            # The first endpoint of a model wins, so a model name is a stable alias.
            by_model.setdefault((endpoint.account_id, endpoint.model_name), endpoint)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_model", by_model)
        object.__setattr__(self, "_by_id", {e.endpoint_id: e for e in self.endpoints})

    def by_name(self, account_id: str, name: str) -> RouteEndpoint | None:
        return self._by_name.get((account_id, name))

    def by_model(self, account_id: str, name: str) -> RouteEndpoint | None:
        """The endpoint named ``name``, else the endpoint serving model ``name``."""
        return self._by_name.get((account_id, name)) or self._by_model.get((account_id, name))

    def by_id(self, endpoint_id: str) -> RouteEndpoint | None:
        return self._by_id.get(endpoint_id)

    def of_account(self, account_id: str) -> list[RouteEndpoint]:
        return [e for e in self.endpoints if e.account_id == account_id]
