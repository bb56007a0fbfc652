"""``/v1/billing`` over HTTP with the SDK: estimates, usage, invoices (JSON, HTML, PDF
rendered to a page image), top-ups and tenant isolation.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import regolo
from regolo.server.billing.config import billing_config
from regolo.server.billing.meter import Meter
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Deployment, Endpoint, Replica
from tests.support.live import LiveServer, live_server
from tests.support.seed_models import SEED_MODEL, register_seed_model
from tests.support.serving_backend import ServingFakeBackend

pytestmark = pytest.mark.timeout(180)

A100 = "a100-40gb-x1"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add_history(live: LiveServer, endpoint: str, instance_type: str, start: str, stop: str) -> None:
    """A replica of ``endpoint`` that ran (and stopped) in the past, as the store records it."""
    with live.platform.db.write() as session:
        deployment = session.scalar(
            select(Deployment).join(Endpoint).where(Endpoint.name == endpoint)
        )
        assert deployment is not None
        session.add(
            Replica(
                id=new_id("rep"),
                deployment_id=deployment.id,
                state="stopped",
                backend="fake",
                runtime="llamacpp",
                instance_type=instance_type,
                auth_token="t",
                created_at=at(start),
                started_at=at(start),
                stopped_at=at(stop),
            )
        )


def run_meter(live: LiveServer) -> None:
    """One metering tick now (the platform's own loop runs every 30 s)."""
    platform = live.platform
    Meter(platform.db, lambda: platform.catalog, billing_config(platform.settings)).tick()
    platform.notify_desired_state_changed()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("regolo-home")
    backend = ServingFakeBackend()
    try:
        with live_server(home, backend=backend) as live:
            with live.client() as http:
                register_seed_model(http, versions=("1.0",))
                created = http.post("/v1/endpoints", json={"name": "chat", "model": SEED_MODEL})
                assert created.status_code == 201, created.text
            live.wait_ready("chat", timeout=60)
            # October: 22:17 and 23:17 on Oct 31; the 00:17 hour belongs to November.
            add_history(live, "chat", A100, "2026-10-31T22:17:00", "2026-11-01T01:05:00")
            run_meter(live)
            yield live
    finally:
        backend.stop_all()


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[regolo.RegoloClient]:
    with regolo.RegoloClient(api_key=server.admin_key, base_url=server.base_url) as client:
        yield client


def test_seed_cost_examples(sdk: regolo.RegoloClient) -> None:
    small = sdk.estimate_cost(model="Llama-2-7B", instance_type=A100)
    assert (small.price_per_hour, small.cost_per_month) == (Decimal("0.50"), Decimal("360.00"))
    large = sdk.estimate_cost(model="Llama-2-70B", instance_type="a100-80gb-x2")
    assert (large.cost_per_hour, large.cost_per_month) == (Decimal("2.00"), Decimal("1440.00"))
    autoscaled = sdk.estimate_cost(instance_type=A100, min_replicas=1, max_replicas=3)
    assert (autoscaled.cost_per_month_min, autoscaled.cost_per_month_max) == (
        Decimal("360.00"),
        Decimal("1080.00"),
    )
    fitted = sdk.estimate_cost(model=SEED_MODEL)  # in the library: cheapest type that fits
    assert fitted.fits is True and fitted.instance_type == "cpu-small"


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"instance_type": "tpu-v9"}, 404, "instance_type"),
        ({"model": "not-in-library"}, 422, "instance_type"),
        ({"instance_type": A100, "hours_per_month": 0}, 422, "hours_per_month"),
        ({"instance_type": A100, "replicas": 5, "max_replicas": 2}, 422, "replicas"),
    ],
)
def test_estimate_errors(
    server: LiveServer, params: dict[str, Any], status: int, param: str
) -> None:
    with server.client() as http:
        response = http.get("/v1/billing/estimate", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def _october(sdk: regolo.RegoloClient) -> regolo.Invoice:
    return next(i for i in sdk.list_invoices() if i.month == "2026-10")


def test_invoices_json(sdk: regolo.RegoloClient) -> None:
    invoices = sdk.list_invoices()
    assert invoices[0].status == "preview"
    october = _october(sdk)
    assert october.status == "final"
    assert [(x.endpoint, x.instance_type, x.hours, x.amount) for x in october.lines] == [
        ("chat", A100, 2, Decimal("1.00"))
    ]
    assert (october.subtotal, october.total_hours) == (Decimal("1.00"), 2)
    assert sdk.get_invoice(october.id) == october
    assert sdk.get_invoice("preview").month == datetime.now(UTC).strftime("%Y-%m")
    # The 00:17 hour of Nov 1 is November's: on its preview while November lasts, then
    # on its final invoice.
    november = next(i for i in sdk.list_invoices() if i.month == "2026-11")
    assert [x.hours for x in november.lines if x.instance_type == A100] == [1]


def _pdf_text(pdf: Path) -> str:
    out = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_invoice_pdf_renders_and_matches_the_json(sdk: regolo.RegoloClient, tmp_path: Path) -> None:
    from PIL import Image

    october = _october(sdk)
    pdf = sdk.download_invoice_pdf(october.id, tmp_path / "invoice.pdf")
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    with Image.open(tmp_path / "page.png") as page:
        gray = page.convert("L")
        width, height = gray.size
        dark = sum(gray.histogram()[:128])  # pixels darker than mid-grey
    assert width > 400 and height > 600  # an A4 page at 60 dpi
    assert 0.002 < dark / (width * height) < 0.2  # text on a white page, neither blank nor black
    text = _pdf_text(pdf)
    assert f"Invoice {october.month}" in text and october.id in text
    for label, value in [
        ("Subtotal", october.subtotal),
        ("Credits applied", october.credits_applied),
        ("Amount due", october.amount_due),
        ("Closing balance", october.closing_balance),
        ("Total hours", october.total_hours),
    ]:
        row = next(line for line in text.splitlines() if line.strip().startswith(label))
        assert row.split()[-1] == f"{value}", (label, row)
    line = next(line for line in text.splitlines() if line.strip().startswith("chat"))
    assert line.split()[-3:] == ["2", "0.50", "1.00"]


def test_invoice_html(server: LiveServer, sdk: regolo.RegoloClient) -> None:
    october = _october(sdk)
    with server.client() as http:
        page = http.get(f"/v1/billing/invoices/{october.id}.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Invoice 2026-10" in page.text and ">1.00<" in page.text and A100 in page.text


def test_usage_json_and_csv(sdk: regolo.RegoloClient) -> None:
    usage = sdk.get_usage("2026-10")
    assert (usage.total_hours, usage.total_amount) == (2, Decimal("1.00"))
    assert [(u.endpoint, u.hours) for u in usage.by_endpoint] == [("chat", 2)]
    rows = sdk.get_usage_csv("2026-10").strip().splitlines()
    assert rows[0].startswith("hour_start,endpoint,")
    assert len(rows) == 1 + usage.total_hours
    assert rows[1].split(",")[0] == "2026-10-31T22:17:00+00:00"


def test_bad_month_and_invoice_ids(server: LiveServer) -> None:
    with server.client() as http:
        assert http.get("/v1/billing/usage", params={"month": "2026-13"}).status_code == 422
        assert http.get("/v1/billing/usage", params={"month": "../x"}).status_code == 422
        assert http.get("/v1/billing/invoices/inv_nope").status_code == 404
        assert http.get("/v1/billing/invoices/..%2F..%2Fetc.pdf").status_code == 404


def test_topups_are_for_the_superadmin(server: LiveServer, sdk: regolo.RegoloClient) -> None:
    with server.client() as http:
        created = http.post("/v1/accounts", json={"name": "team-b"})
        assert created.status_code == 201, created.text
        other = created.json()
    team_b = regolo.RegoloClient(api_key=other["admin_key"], base_url=server.base_url)
    with team_b:
        assert team_b.get_balance().balance == Decimal("100.00")  # the initial credit
        with pytest.raises(regolo.PermissionDeniedError):
            team_b.topup("5")
        with pytest.raises(regolo.NotFoundError):  # S6: another tenant's invoice
            team_b.get_invoice(_october(sdk).id)
        credited = sdk.topup("12.5", account_id="team-b", note="PO 42")
        assert credited.account_id == other["id"] and credited.amount == Decimal("12.50")
        assert team_b.get_balance().balance == Decimal("112.50")

    with server.client() as http:
        first = http.post(
            "/v1/billing/topups", json={"amount": "1"}, headers={"Idempotency-Key": "k1"}
        )
        again = http.post(
            "/v1/billing/topups", json={"amount": "1"}, headers={"Idempotency-Key": "k1"}
        )
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        for bad in ({"amount": "-5"}, {"amount": "abc"}, {"amount": "0.0000001"}, {"x": 1}):
            assert http.post("/v1/billing/topups", json=bad).status_code == 422, bad
        missing = http.post("/v1/billing/topups", json={"amount": "1", "account_id": "nope"})
        assert missing.status_code == 404


def test_balance(sdk: regolo.RegoloClient) -> None:
    balance = sdk.get_balance()
    assert balance.status == "active" and not balance.overdrawn
    assert balance.cost_per_hour == Decimal("0.02")  # the chat replica on cpu-small


def test_every_billing_route_needs_a_key(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as anonymous:
        for path in (
            "/v1/billing/balance",
            "/v1/billing/usage",
            "/v1/billing/invoices",
            "/v1/billing/invoices/preview",
            "/v1/billing/invoices/preview.pdf",
            "/v1/billing/estimate",
        ):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/v1/billing/topups", json={"amount": "1"}).status_code == 401
