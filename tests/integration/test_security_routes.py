"""S1: every route and method answers 401 without a valid key, except the public list.

The inventory is walked from the application itself, so a route added later is covered
without editing this file; a route that answers anything but 401 fails the test.
Requests go through the top-level ASGI app in-process (raw scopes, so ``%2e`` and ``//``
reach the app exactly as a server would decode them) and a few over real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from regolo.server.accounts import bootstrap
from regolo.server.app import PlatformApp, create_app
from regolo.server.middleware import PUBLIC_PATHS
from regolo.server.platform import Platform
from regolo.server.settings import Settings
from tests.support.live import live_server

EXPECTED_PUBLIC = {"/healthz", "/readyz"}
EXTRA_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
GATEWAY_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
    "/custom-model/v1/chat/completions",
    "/custom-model/v1/chat/completions/",
    "/endpoints/demo/v1/chat/completions",
    "/endpoints/demo/v1/completions",
    "/endpoints/demo/v1/embeddings",
    "/endpoints/demo/v1/models",
    "/endpoints/no-such-endpoint/v1/chat/completions",
)
UNKNOWN_PATHS = ("/", "/v1", "/v1/", "/v1/nothing-here", "/dashboard", "/metrics", "/v2/keys")


@pytest.fixture
def app(home: Path) -> Iterator[tuple[PlatformApp, str]]:
    settings = Settings(home=home, backend="fake", demo=False)
    platform = Platform.open(settings)
    admin_key = bootstrap(platform.db, home)
    assert admin_key is not None
    try:
        yield create_app(settings, platform, run_loops=False), admin_key
    finally:
        platform.close()


# ---- raw ASGI calls --------------------------------------------------------------------


async def _call(
    app: Any, method: str, raw_path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path),  # servers hand the app the decoded path
        "raw_path": raw_path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    start = next(m for m in messages if m["type"] == "http.response.start")
    response_headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    payload = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], response_headers, payload


def _bad_credentials(admin_key: str) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every way of not presenting a valid bearer key (the real key under wrong schemes too)."""
    basic = base64.b64encode(f"admin:{admin_key}".encode())
    return {
        "none": [],
        "empty": [(b"authorization", b"")],
        "bearer-only": [(b"authorization", b"Bearer")],
        "bearer-space": [(b"authorization", b"Bearer    ")],
        "malformed": [(b"authorization", b"Bearer not-a-key")],
        "almost-key": [(b"authorization", b"Bearer rg_0000000000000000_" + b"A" * 32)],
        "key-prefix-only": [(b"authorization", b"Bearer " + admin_key.rsplit("_", 1)[0].encode())],
        "truncated-key": [(b"authorization", b"Bearer " + admin_key[:-1].encode())],
        "basic": [(b"authorization", b"Basic " + basic)],
        "token-scheme": [(b"authorization", b"Token " + admin_key.encode())],
        "no-scheme": [(b"authorization", admin_key.encode())],
        "x-api-key": [(b"x-api-key", admin_key.encode())],
        "query-only": [(b"cookie", b"api_key=" + admin_key.encode())],
    }


def _registered_routes(app: PlatformApp) -> list[tuple[str, frozenset[str]]]:
    """Every (path template, methods) of the control API, walking included routers."""
    found: list[tuple[str, frozenset[str]]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI >= 0.160 keeps includes lazy
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "routes") and not hasattr(route, "methods"):
                walk(route.routes, prefix + getattr(route, "path", ""))
            else:
                methods = getattr(route, "methods", None) or {"GET"}
                found.append((prefix + route.path, frozenset(methods)))

    walk(app.api.router.routes, "")
    return found


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", template)


def _variants(path: str) -> list[str]:
    """The path as given, with a trailing slash, ``//`` and ``%2e`` spellings."""
    variants = [path, path.rstrip("/") + "/", "/" + path, path.replace("/", "//", 2)]
    segments = path.split("/")
    if len(segments) > 2:
        variants.append("/".join([*segments[:2], "%2e", *segments[2:]]))
        variants.append("/".join([*segments[:2], "%2E%2E", *segments[1:]]))
        variants.append("/".join([*segments[:2], "%2e%2e", *segments[2:]]))
    variants.append(path + "%2f")
    variants.append(path + "/.")
    return list(dict.fromkeys(variants))


def _is_public(path: str) -> bool:
    return path in EXPECTED_PUBLIC


def _check_401(status: int, headers: dict[str, str], body: bytes, method: str) -> str | None:
    if status != 401:
        return f"status {status}"
    if "x-request-id" not in headers:
        return "no x-request-id"
    if method == "HEAD":
        return None
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"not OpenAI-shaped: {body[:200]!r}"
    if error.get("type") != "authentication_error" or set(error) != {
        "message",
        "type",
        "param",
        "code",
    }:
        return f"wrong error body {error}"
    return None


def _sweep(app: PlatformApp, admin_key: str, targets: list[tuple[str, str]]) -> list[str]:
    credentials = _bad_credentials(admin_key)
    json_header = [(b"content-type", b"application/json")]

    async def run() -> list[str]:
        failures = []
        for method, path in targets:
            for name, headers in credentials.items():
                body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
                extra = json_header if body else []
                status, response_headers, payload = await _call(
                    app, method, path, headers + extra, body
                )
                problem = _check_401(status, response_headers, payload, method)
                if problem:
                    failures.append(f"{method} {path} [{name}]: {problem}")
        return failures

    return asyncio.run(run())


# ---- tests -----------------------------------------------------------------------------


def test_public_list_is_exactly_healthz_and_readyz() -> None:
    assert set(PUBLIC_PATHS) == EXPECTED_PUBLIC


def test_every_registered_route_and_method_answers_401(app: tuple[PlatformApp, str]) -> None:
    platform_app, admin_key = app
    routes = _registered_routes(platform_app)
    assert len(routes) >= 15, routes  # the walk really found the routers
    openapi_paths = set(platform_app.api.openapi()["paths"])
    assert openapi_paths <= {template for template, _ in routes}
    targets = []
    for template, methods in routes:
        if _is_public(template):
            continue
        for method in sorted(set(methods) | {"HEAD", "DELETE", "OPTIONS"}):
            for path in _variants(_concrete(template)):
                targets.append((method, path))
    failures = _sweep(platform_app, admin_key, targets)
    assert not failures, "\n".join(failures[:50])


def test_every_gateway_path_answers_401(app: tuple[PlatformApp, str]) -> None:
    platform_app, admin_key = app
    targets = [(m, v) for path in GATEWAY_PATHS for v in _variants(path) for m in EXTRA_METHODS]
    failures = _sweep(platform_app, admin_key, targets)
    assert not failures, "\n".join(failures[:50])


def test_unknown_paths_answer_401_not_404(app: tuple[PlatformApp, str]) -> None:
    """No existence leak: unknown routes look the same as known ones without a key."""
    platform_app, admin_key = app
    targets = [(m, v) for path in UNKNOWN_PATHS for v in _variants(path) for m in EXTRA_METHODS]
    failures = _sweep(platform_app, admin_key, targets)
    assert not failures, "\n".join(failures[:50])


def test_public_variants_do_not_open_other_routes(app: tuple[PlatformApp, str]) -> None:
    """``/healthz/../v1/keys`` and friends must not ride on the public list."""
    platform_app, admin_key = app
    tricks = [
        "/healthz/../v1/keys",
        "/healthz/%2e%2e/v1/keys",
        "/readyz/..%2fv1/keys",
        "/healthz%2f..%2fv1%2fkeys",
        "/healthz/",
        "/healthz/x",
        "/readyzz",
        "//healthz",
    ]
    failures = _sweep(
        platform_app, admin_key, [(m, p) for p in tricks for m in ("GET", "POST", "DELETE")]
    )
    assert not failures, "\n".join(failures)


def test_a_new_unlisted_route_is_protected(app: tuple[PlatformApp, str]) -> None:
    """A route added without thought for auth still answers 401 (auth precedes routing)."""
    platform_app, admin_key = app

    @platform_app.api.get("/v1/added-later")
    def added_later() -> dict[str, str]:
        return {"secret": "data"}

    assert ("/v1/added-later", frozenset({"GET"})) in _registered_routes(platform_app)
    failures = _sweep(platform_app, admin_key, [("GET", "/v1/added-later")])
    assert not failures, "\n".join(failures)
    status, _, body = asyncio.run(
        _call(
            platform_app,
            "GET",
            "/v1/added-later",
            [(b"authorization", f"Bearer {admin_key}".encode())],
        )
    )
    assert status == 200 and json.loads(body) == {"secret": "data"}


def test_public_routes_answer_without_a_key(app: tuple[PlatformApp, str]) -> None:
    platform_app, _ = app
    for path in EXPECTED_PUBLIC:
        status, headers, body = asyncio.run(_call(platform_app, "GET", path, []))
        assert status == 200, (path, body)
        assert "x-request-id" in headers


def test_valid_key_reaches_the_routes(app: tuple[PlatformApp, str]) -> None:
    """The sweep is meaningful: the same paths with the real key do not answer 401."""
    platform_app, admin_key = app
    auth = [(b"authorization", f"Bearer {admin_key}".encode())]
    for path in ("/v1/keys", "/v1/endpoints", "/v1/models", "/openapi.json"):
        status, _, body = asyncio.run(_call(platform_app, "GET", path, auth))
        assert status == 200, (path, body[:300])


def test_over_real_http_unnormalised_paths_answer_401(home: Path) -> None:
    """uvicorn decodes ``%2e`` and keeps ``//``: the middleware still sees no key."""
    paths = [
        "/v1/keys",
        "/v1/keys/",
        "//v1/keys",
        "/v1//keys",
        "/v1/%2e/keys",
        "/v1/%2e%2e/v1/keys",
        "/v1/./keys",
        "/healthz/../v1/keys",
        "/v1/chat/completions",
        "/custom-model/v1/chat/completions/",
        "/endpoints/demo/v1/models",
    ]
    from regolo.server.backends.fake import FakeBackend

    with live_server(home, backend=FakeBackend()) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        failures = []
        for path in paths:
            for method in ("GET", "HEAD", "POST", "DELETE"):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request(
                        method, path, headers={"Authorization": "Basic " + server.admin_key}
                    )
                    response = conn.getresponse()
                    response.read()
                    if response.status != 401:
                        failures.append(f"{method} {path}: {response.status}")
                finally:
                    conn.close()
        assert not failures, failures
