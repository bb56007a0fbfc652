"""A store with one account, one model and endpoints to hang replicas on, in simulated time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import pytest

from regolo.server.billing.catalog import Catalog, load_catalog
from regolo.server.billing.config import BillingConfig
from regolo.server.billing.meter import Meter, TickResult
from regolo.server.store.database import Database
from regolo.server.store.ids import new_id
from regolo.server.store.migrate import upgrade
from regolo.server.store.tables import (
    Account,
    Deployment,
    Endpoint,
    Model,
    ModelVersion,
    Replica,
)


@dataclass
class World:
    """The store plus a settable clock and price book, as the platform would hold them."""

    url: str
    db: Database
    account_id: str
    model_id: str
    version_id: str
    now: datetime = datetime(2026, 1, 1)
    catalog: Catalog = field(default_factory=load_catalog)
    config: BillingConfig = field(default_factory=BillingConfig)

    def meter(self) -> Meter:
        return Meter(self.db, lambda: self.catalog, self.config, clock=lambda: self.now)

    def tick(self, at: datetime) -> TickResult:
        self.now = at
        return self.meter().tick()

    def restart(self) -> None:
        """A new process: fresh engines on the same store."""
        self.db.dispose()
        self.db = Database(self.url)

    def endpoint(self, name: str, instance_type: str, replicas: int = 1) -> str:
        with self.db.write() as session:
            endpoint = Endpoint(
                id=new_id("ep"),
                account_id=self.account_id,
                name=name,
                model_id=self.model_id,
                instance_type=instance_type,
                replicas=replicas,
                runtime_options={},
                allowed_key_ids=[],
            )
            session.add(endpoint)
            session.flush()
            deployment = Deployment(
                id=new_id("dep"),
                endpoint_id=endpoint.id,
                model_version_id=self.version_id,
                version="1.0",
                traffic_weight=1.0,
                replicas=replicas,
            )
            session.add(deployment)
            return deployment.id

    def start(self, deployment_id: str, at: datetime, instance_type: str) -> str:
        with self.db.write() as session:
            replica = Replica(
                id=new_id("rep"),
                deployment_id=deployment_id,
                state="ready",
                backend="fake",
                runtime="llamacpp",
                instance_type=instance_type,
                auth_token="t",
                created_at=at,
                started_at=at,
            )
            session.add(replica)
            return replica.id

    def stop(self, replica_id: str, at: datetime) -> None:
        with self.db.write() as session:
            replica = session.get(Replica, replica_id)
            assert replica is not None
            replica.state, replica.stopped_at = "stopped", at

    def set_price(self, instance_type: str, price: str, version: str) -> None:
        import dataclasses

        types = tuple(
            dataclasses.replace(i, price_per_hour=Decimal(price)) if i.id == instance_type else i
            for i in self.catalog.instance_types
        )
        self.catalog = dataclasses.replace(self.catalog, version=version, instance_types=types)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """On SQLite and on PostgreSQL (``database_url`` is parametrised over both)."""
    url = database_url
    db = Database(url)
    upgrade(db.write_engine)
    with db.write() as session:
        account = Account(id=new_id("acct"), name="team")
        session.add(account)
        session.flush()
        model = Model(id=new_id("mod"), account_id=account.id, name="llama")
        session.add(model)
        session.flush()
        version = ModelVersion(
            id=new_id("mv"),
            model_id=model.id,
            version="1.0",
            source_kind="local",
            source_uri="/x",
            status="ready",
        )
        session.add(version)
        session.flush()
        ids = (account.id, model.id, version.id)
    state = World(url=url, db=db, account_id=ids[0], model_id=ids[1], version_id=ids[2])
    yield state
    state.db.dispose()
