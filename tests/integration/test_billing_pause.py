"""Out of credit, end to end: the account's endpoints scale to zero, stay there while
paused, and come back (with the replica count last asked for) after a top-up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

import regolo
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Replica
from tests.integration.test_billing_api import run_meter
from tests.support.live import LiveServer, live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model, wait_until
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(180)


def _deployment_id(live: LiveServer, account_id: str, endpoint: str) -> str:
    with live.platform.db.read() as session:
        found = session.scalar(
            select(Deployment.id)
            .join(Endpoint)
            .where(Endpoint.account_id == account_id, Endpoint.name == endpoint)
        )
    assert found is not None
    return str(found)


def _desired(live: LiveServer, deployment_id: str) -> int:
    with live.platform.db.read() as session:
        row = session.get(Deployment, deployment_id)
        assert row is not None
        return row.replicas


def _spent_six_h200_hours(live: LiveServer, deployment_id: str) -> None:
    """6 hours of h200-141gb-x8 at 17.60 = 105.60, more than the 100.00 initial credit."""
    now = datetime.now(UTC)
    with live.platform.db.write() as session:
        session.add(
            Replica(
                id=new_id("rep"),
                deployment_id=deployment_id,
                state="stopped",
                backend="fake",
                runtime="llamacpp",
                instance_type="h200-141gb-x8",
                auth_token="t",
                created_at=now - timedelta(hours=10),
                started_at=now - timedelta(hours=10),
                stopped_at=now - timedelta(hours=4, minutes=1),
            )
        )


def test_pause_and_resume(home: object) -> None:
    backend = ServingFakeBackend()
    try:
        with live_server(home, backend=backend) as live:  # type: ignore[arg-type]
            _scenario(live, backend)
    finally:
        backend.stop_all()


def _scenario(live: LiveServer, backend: ServingFakeBackend) -> None:
    with live.client() as http:
        created = http.post("/v1/accounts", json={"name": "team-b"})
        assert created.status_code == 201, created.text
        team = created.json()
    operator = regolo.RegoloClient(api_key=live.admin_key, base_url=live.base_url)
    client = regolo.RegoloClient(api_key=team["admin_key"], base_url=live.base_url)
    with operator, client, live.client(team["admin_key"]) as http:
        register_seed_model(http, versions=("1.0",))
        client.create_endpoint("work", SEED_MODEL, "1.0", replicas=2)
        live.wait_ready("work", timeout=60, key=team["admin_key"])
        deployment = _deployment_id(live, team["id"], "work")

        _spent_six_h200_hours(live, deployment)
        run_meter(live)
        balance = client.get_balance()
        assert balance.status == "paused_insufficient_credit" and balance.overdrawn
        assert balance.balance == Decimal("100.00") - Decimal("105.60") - Decimal("0.04")
        assert _desired(live, deployment) == 0
        wait_until(lambda: not backend.live_replicas(deployment), timeout=30, what="scale to 0")
        wait_until(
            lambda: client.get_endpoint("work").status == "paused_insufficient_credit",
            timeout=30,
            what="endpoint paused for credit",
        )
        # The other account is not touched.
        assert operator.get_balance().status == "active"

        # Scaling up while paused is held at zero by the next tick; the wish is kept.
        client.update_endpoint("work", replicas=3)
        run_meter(live)
        assert _desired(live, deployment) == 0
        wait_until(lambda: not backend.live_replicas(deployment), timeout=30, what="held at 0")

        short = operator.topup("5", account_id="team-b")
        assert short.resumed is False and short.balance.status == "paused_insufficient_credit"
        enough = operator.topup("10", account_id="team-b")
        assert enough.resumed is True and enough.balance.status == "active"
        assert _desired(live, deployment) == 3
        live.wait_ready("work", timeout=60, key=team["admin_key"])
        assert len(backend.live_replicas(deployment)) == 3
        run_meter(live)
        assert client.get_balance().status == "active"
