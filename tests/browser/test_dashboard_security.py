"""Dashboard S1 (no page or fragment without a session), CSRF, XSS, cookies and headers.

Plain HTTP against a real platform on loopback (fake backend): fast, no browser needed.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from regolo.server.backends.fake import FakeBackend
from regolo.server.dashboard.app import Dashboard
from regolo.server.dashboard.session import COOKIE_NAME, SECRET_FILE
from tests.browser.dashboard_client import login
from tests.support.live import LiveServer, live_server

PUBLIC = {"/ui/login"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def live(home: Path) -> Iterator[LiveServer]:
    with live_server(home, backend=FakeBackend()) as server:
        yield server


def _page_paths(live: LiveServer) -> list[tuple[str, set[str]]]:
    found = []
    for route in Dashboard(live.settings, None).pages.routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        found.append((path, set(route.methods or {"GET"})))
    return found


def test_every_page_and_fragment_needs_a_session(live: LiveServer) -> None:
    extra = [("/", {"GET"}), ("/ui/nothing-here", {"GET"}), ("/ui/static/../keys", {"GET"})]
    paths = [*_page_paths(live), *extra]
    assert len(paths) >= 25
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        for path, _ in paths:
            for method in METHODS:
                for cookies in ({}, {COOKIE_NAME: "forged"}, {COOKIE_NAME: "gAAAAA" + "A" * 100}):
                    client.cookies.clear()
                    response = client.request(
                        method,
                        path,
                        cookies=cookies,
                        data={"csrf_token": "x"} if method == "POST" else None,
                    )
                    assert response.status_code == 401, (method, path, response.status_code)
                    assert "x-request-id" in response.headers
                    if method != "HEAD":
                        assert response.json()["error"]["type"] == "authentication_error"


def test_browser_navigation_without_session_gets_the_login_form_as_401(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        response = client.get("/ui/keys", headers={"accept": "text/html"})
    assert response.status_code == 401
    assert 'action="/ui/login"' in response.text
    assert "rg_" not in response.text  # nothing of the account


def test_login_page_and_static_files_are_public(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        assert client.get("/ui/login").status_code == 200
        assert client.get("/ui/static/app.js").status_code == 200
        assert client.get("/ui/static/app.css").status_code == 200
        assert client.get("/ui/static/../../v1/keys").status_code == 401


def test_session_cookie_is_http_only_strict_and_sealed(live: LiveServer) -> None:
    client, _ = login(live.base_url, live.admin_key)
    with contextlib.closing(client):
        form = httpx.get(f"{live.base_url}/ui/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = httpx.post(
            f"{live.base_url}/ui/login",
            data={"csrf_token": token.group(1), "api_key": live.admin_key},
            cookies=form.cookies,
        )
        set_cookie = response.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert live.admin_key not in response.headers["set-cookie"]
        secret = live.admin_key.split("_", 2)[2]  # the secret itself may hold "_"
        assert secret not in response.headers["set-cookie"]
    mode = stat.S_IMODE((live.settings.home / SECRET_FILE).stat().st_mode)
    assert mode == 0o600


def test_login_needs_its_csrf_cookie_and_a_valid_admin_key(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        refused = client.post("/ui/login", data={"csrf_token": "guess", "api_key": live.admin_key})
        assert refused.status_code == 403 and COOKIE_NAME not in refused.headers.get(
            "set-cookie", ""
        )
        form = client.get("/ui/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        wrong = client.post("/ui/login", data={"csrf_token": token.group(1), "api_key": "rg_nope"})
        assert wrong.status_code == 401
    with live.client() as api:
        inference_key = api.post(
            "/v1/keys", json={"name": "app", "scopes": ["inference:*"]}
        ).json()["key"]
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        form = client.get("/ui/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = client.post(
            "/ui/login", data={"csrf_token": token.group(1), "api_key": inference_key}
        )
        assert response.status_code == 401 and "admin scope" in response.text


def _post_routes(live: LiveServer) -> list[str]:
    return [path for path, methods in _page_paths(live) if "POST" in methods]


def test_every_post_without_the_csrf_token_is_refused(live: LiveServer) -> None:
    client, token = login(live.base_url, live.admin_key)
    with contextlib.closing(client):
        for path in _post_routes(live):
            for data in ({}, {"csrf_token": "wrong"}, {"csrf_token": token[:-1]}):
                response = client.post(path, data={**data, "name": "csrf-test", "url": "x"})
                assert response.status_code == 403, (
                    path,
                    response.status_code,
                    response.text[:200],
                )
        # Nothing happened: no key named csrf-test exists.
        with live.client() as api:
            assert all(k["name"] != "csrf-test" for k in api.get("/v1/keys").json()["data"])
        # The same form with the right token works.
        created = client.post("/ui/keys", data={"csrf_token": token, "name": "csrf-test"})
        assert created.status_code == 201


def test_html_in_user_text_is_shown_as_text(live: LiveServer) -> None:
    client, token = login(live.base_url, live.admin_key)
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    with contextlib.closing(client):
        created = client.post("/ui/keys", data={"csrf_token": token, "name": evil})
        assert created.status_code == 201
        page = client.get("/ui/keys").text
    assert evil not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&lt;script&gt;" in page


def test_pages_send_security_headers_and_no_inline_script(live: LiveServer) -> None:
    client, _ = login(live.base_url, live.admin_key)
    with contextlib.closing(client):
        for path in ("/ui/models", "/ui/endpoints", "/ui/keys", "/ui/batches", "/ui/billing"):
            response = client.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "unsafe-inline" not in csp and "script-src 'self'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            scripts = re.findall(r"<script[^>]*>", response.text)
            assert scripts and all("src=" in tag for tag in scripts)
            assert " style=" not in response.text and " on" + "click=" not in response.text


def test_a_revoked_key_ends_the_session(live: LiveServer) -> None:
    with live.client() as api:
        created = api.post("/v1/keys", json={"name": "temp-admin", "scopes": ["admin"]}).json()
    client, _ = login(live.base_url, created["key"])
    with contextlib.closing(client):
        assert client.get("/ui/keys").status_code == 200
        with live.client() as api:
            api.delete(f"/v1/keys/{created['id']}")
        live.platform.authenticator.forget(created["id"])
        response = client.get("/ui/keys")
    assert response.status_code == 401


def test_playground_fragment_needs_the_csrf_header(live: LiveServer) -> None:
    client, token = login(live.base_url, live.admin_key)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    with contextlib.closing(client):
        refused = client.post("/ui/endpoints/demo/chat", json=body)
        assert refused.status_code == 403
        malformed = client.post(
            "/ui/endpoints/demo/chat", json={"messages": "x"}, headers={"x-csrf-token": token}
        )
        assert malformed.status_code == 400


def test_path_parameters_outside_the_api_names_never_reach_the_api(live: LiveServer) -> None:
    client, _ = login(live.base_url, live.admin_key)
    cookie = f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"
    client.close()
    host, port = live.base_url.removeprefix("http://").split(":")
    # http.client sends the path as written (httpx would normalise the dot segments away).
    for path in ("/ui/models/%2e%2e", "/ui/models/%2E%2E/versions/x/deploy", "/ui/endpoints/a%20b"):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("GET", path, headers={"Cookie": cookie})
            status = connection.getresponse().status
        finally:
            connection.close()
        assert status == 404, path


def test_bodies_are_capped(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        huge = client.post("/ui/login", data={"csrf_token": "x", "api_key": "k" * 20_000})
        assert huge.status_code == 413
    client, token = login(live.base_url, live.admin_key)
    with contextlib.closing(client):
        big = "x" * (live.settings.max_body_bytes + 1)
        response = client.post("/ui/keys", data={"csrf_token": token, "name": big})
        assert response.status_code == 413
