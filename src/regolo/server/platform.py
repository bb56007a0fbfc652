"""The platform's long-lived services, built once from settings and passed down."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from regolo.server.backends.base import ReplicaBackend
from regolo.server.control.health import HealthChecker
from regolo.server.control.leader import LeaderLease
from regolo.server.control.loops import Controller
from regolo.server.control.reconciler import Reconciler, ReconcilerDeps
from regolo.server.control.routing import build_routing_table
from regolo.server.gateway.app import Gateway, create_gateway
from regolo.server.gateway.request_body import BodyLimits
from regolo.server.gateway.usage import UsageBuffer
from regolo.server.keys import KeyAuthenticator
from regolo.server.metrics.flusher import UsageFlusher
from regolo.server.runtimes.registry import choose_runtime, get_runtime
from regolo.server.settings import Settings
from regolo.server.specs import ModelArtifact, Resources
from regolo.server.store.changes import ChangeFeed
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade

log = logging.getLogger("regolo.platform")
USAGE_FLUSH_INTERVAL_SECONDS = 3.0  # batching spreads a transaction's cost over many records


@dataclass
class Platform:
    settings: Settings
    db: Database
    authenticator: KeyAuthenticator
    backend: ReplicaBackend = field(init=False)
    usage: UsageBuffer = field(default_factory=UsageBuffer)
    gateway: Gateway | None = None
    controller: Controller | None = None
    health: HealthChecker | None = None
    catalog: Any = None
    downloader: Any = None
    flusher: UsageFlusher = field(init=False)
    reconciler: Reconciler | None = None
    leader: LeaderLease | None = None
    changes: ChangeFeed | None = None
    _gateway_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(cls, settings: Settings, *, backend: ReplicaBackend | None = None) -> Platform:
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        upgrade(db.write_engine)
        platform = cls(
            settings=settings,
            db=db,
            authenticator=KeyAuthenticator(db, cache_seconds=settings.key_cache_seconds),
        )
        platform.changes = ChangeFeed(db)
        platform.flusher = UsageFlusher(db, platform.usage)
        platform.backend = backend if backend is not None else _make_backend(settings)
        platform.catalog = _load_catalog(settings)
        from regolo.server.library.downloads import Downloader

        platform.downloader = Downloader(
            db, settings, on_ready=platform.notify_desired_state_changed
        )
        platform.gateway = create_gateway(
            authenticator=platform.authenticator,
            endpoint_domain=settings.endpoint_domain,
            usage=platform.usage,
            limits=BodyLimits(
                max_body_bytes=settings.max_body_bytes,
                max_tokens_cap=settings.max_tokens_cap,
                n_cap=settings.max_n_cap,
            ),
            on_no_ready_replica=lambda endpoint_id: platform.notify_desired_state_changed(),
        )
        return platform

    # ---- control plane ------------------------------------------------------------

    def start_loops(self) -> None:
        """Start this role's loops on their own thread.

        Every role that serves requests refreshes its routing table and flushes its usage
        records; ``all`` and ``controller`` also run the control loops, under the lease.
        """
        self._gateway_loop = _running_loop()
        serves_requests = self.settings.role in ("all", "gateway")
        if self.changes is not None and serves_requests:
            self.changes.listen(self.publish_routing)
        controller = Controller(on_change=self._routing_changed)
        controller.add("routing", self._refresh_routing, self.settings.routing_refresh_seconds)
        if serves_requests:
            controller.add("usage-flush", self._flush_usage, USAGE_FLUSH_INTERVAL_SECONDS)
        if self.settings.role in ("all", "controller"):
            self.backend.connect()  # a cluster backend joins its cluster once, up front
            self.downloader.resume_all()
            self._add_control_loops(controller)
        self.controller = controller
        self.publish_routing()
        controller.start()

    def _add_control_loops(self, controller: Controller) -> None:
        self.reconciler = reconciler = Reconciler(
            ReconcilerDeps(
                db=self.db,
                backend=self.backend,
                instance_lookup=self.instance_lookup,
                choose_runtime=self.runtime_for,
                outstanding=self._outstanding,
                max_start_attempts=self.settings.replica_max_start_attempts,
            )
        )
        self.health = HealthChecker(
            self.db,
            self.backend,
            start_timeout_seconds=self.settings.replica_start_timeout_seconds,
            probe_timeout_seconds=self.settings.health_probe_timeout_seconds,
        )
        self.leader = lease = LeaderLease(
            self.db,
            ttl_seconds=self.settings.leader_lease_seconds,
            on_elected=reconciler.adopt_existing,
        )
        controller.add("leader", lease.step, self.settings.leader_lease_seconds / 3)
        controller.add(
            "reconcile", lease.guard(reconciler.tick), self.settings.reconcile_interval_seconds
        )
        controller.add(
            "health", lease.guard(self.health.tick), self.settings.health_interval_seconds
        )
        for name, step, interval_seconds in _feature_loops(self):
            controller.add(name, lease.guard(step), interval_seconds)

    async def _flush_usage(self) -> bool:
        self.flusher.flush()
        return False  # metrics never change routing

    def stop_loops(self) -> None:
        if self.changes is not None:
            self.changes.stop()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def notify_desired_state_changed(self) -> None:
        if self.controller is not None:
            self.controller.poke()
        self.publish_routing()
        if self.changes is not None:
            self.changes.announce()

    def publish_routing(self) -> None:
        """Rebuild the routing table from the store and hand it to the gateway."""
        if self.gateway is None:
            return
        table = build_routing_table(self.db)
        loop = self._gateway_loop
        if loop is not None and not loop.is_closed() and _running_loop() is not loop:
            loop.call_soon_threadsafe(self.gateway.set_table, table)
        else:
            self.gateway.set_table(table)

    def _routing_changed(self) -> None:
        self.publish_routing()
        if self.changes is not None:
            self.changes.announce()

    async def _refresh_routing(self) -> bool:
        self.publish_routing()
        return False

    def _outstanding(self, replica_id: str) -> int:
        if self.gateway is None:
            return 0
        return self.gateway.picker.outstanding.get(replica_id, 0)

    # ---- catalog and runtimes -----------------------------------------------------

    def instance_lookup(self, instance_type: str) -> tuple[int, str | None]:
        from regolo.server.errors import NotFound

        try:
            instance = self.catalog.get(instance_type)
        except NotFound:
            return 0, "cpu"
        return instance.gpu_count, instance.accelerator

    def runtime_for(
        self, artifact: ModelArtifact, resources: Resources, requested: str | None
    ) -> str:
        if requested:
            runtime = get_runtime(requested)
            return str(runtime.name)
        return str(choose_runtime(artifact, resources).name)

    def check_instance(
        self, instance_type: str | None, model: str, version: str, account_id: str
    ) -> None:
        """Hook for sizing checks at create time (instance exists and fits the model)."""
        if instance_type is None:
            return
        from regolo.server.library.instances import check_instance_fits

        check_instance_fits(self, instance_type, model, version, account_id)

    async def shutdown(self) -> None:
        """Graceful stop: loops first, then (by default) this platform's replicas."""
        self.stop_loops()
        self.flusher.flush()  # the last seconds of usage records
        leading = self.leader is not None and self.leader.is_leader
        if leading and self.reconciler is not None and self.settings.stop_replicas_on_exit:
            await self.reconciler.stop_all("the platform was shut down")
        if self.leader is not None:
            self.leader.release()
        self.db.dispose()

    def close(self) -> None:
        self.stop_loops()
        self.db.dispose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


FEATURE_LOOP_MODULES = (
    "regolo.server.metrics.loops",
    "regolo.server.billing.loops",
    "regolo.server.batch.loops",
    "regolo.server.autoscaling.loops",
)


def _feature_loops(platform: Platform) -> list[tuple[str, Any, float]]:
    """Loops of the feature packages: each module's ``make_loops(platform)``."""
    import importlib

    loops: list[tuple[str, Any, float]] = []
    for module_name in FEATURE_LOOP_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise
            continue
        loops.extend(module.make_loops(platform))
    return loops


def _make_backend(settings: Settings) -> ReplicaBackend:
    if settings.backend == "fake":
        from regolo.server.backends.fake import FakeBackend

        return FakeBackend()
    if settings.backend == "ray":
        from regolo.server.backends.ray import RayBackend  # type: ignore[import-not-found]

        return RayBackend(settings)  # type: ignore[no-any-return]
    from regolo.server.backends.local import LocalBackend

    return LocalBackend(settings.home)


def _load_catalog(settings: Settings) -> Any:
    from regolo.server.billing.catalog import load_catalog

    return load_catalog(settings.price_book_path)
