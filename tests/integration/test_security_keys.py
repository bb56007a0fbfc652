"""S2, S3, S4, S6, S7 for the key and account routes, in-process through the real app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from regolo.server.accounts import bootstrap
from regolo.server.app import PlatformApp, create_app
from regolo.server.demo import demo_gguf_path
from regolo.server.keys import KeyAuthenticator
from regolo.server.platform import Platform
from regolo.server.settings import Settings
from regolo.server.store.tables import ApiKey

DB_ERROR_WORDS = (
    "sqlalchemy",
    "sqlite",
    "psycopg",
    "select ",
    "traceback",
    "operationalerror",
    "/tmp/",
)


@dataclass
class FakeTime:
    """Wall clock (expiry) and monotonic clock (cache ages) that tests move by hand."""

    wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    mono: float = 1_000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Harness:
    app: PlatformApp
    platform: Platform
    admin_key: str
    time: FakeTime
    home: Path

    def client(self, key: str | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return TestClient(self.app, headers=headers, raise_server_exceptions=False)


def _open(home: Path, database_url: str | None = None, **overrides: Any) -> Harness:
    roots = [demo_gguf_path().parent] if demo_gguf_path() else []  # type: ignore[union-attr]
    settings = Settings(
        home=home,
        backend="fake",
        demo=False,
        database_url=database_url,
        allowed_local_roots=roots,
        **overrides,
    )
    platform = Platform.open(settings)
    fake_time = FakeTime()
    # One authenticator for the API and the gateway, on simulated time.
    platform.authenticator = KeyAuthenticator(
        platform.db,
        cache_seconds=settings.key_cache_seconds,
        clock=lambda: fake_time.wall,
        monotonic=lambda: fake_time.mono,
    )
    assert platform.gateway is not None
    platform.gateway.authenticator = platform.authenticator
    admin_key = bootstrap(platform.db, home)
    assert admin_key is not None
    return Harness(
        create_app(settings, platform, run_loops=False), platform, admin_key, fake_time, home
    )


@pytest.fixture
def harness(home: Path) -> Iterator[Harness]:
    h = _open(home)
    try:
        yield h
    finally:
        h.platform.close()


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    text = response.text.lower()
    assert not any(word in text for word in DB_ERROR_WORDS), response.text


def _mint(h: Harness, **body: Any) -> dict[str, Any]:
    response = h.client().post("/v1/keys", json={"name": "k", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# ---- S2: hostile strings as keys ------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "rg_' OR 1=1 --_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "rg_0000000000000000_' UNION SELECT secret_hash FROM api_keys --",
    "'; DROP TABLE api_keys; --",
    '" OR ""="',
    "rg_%_%",
    "rg_*_*",
    "rg_\\x00_\\x00",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "../../etc/passwd",
    "rg_" + "a" * 16 + "_" + "A" * 31,
    "rg_" + "a" * 16 + "_" + "A" * 33,
    "RG_" + "A" * 16 + "_" + "A" * 32,
    "null",
    "undefined",
    "0",
    "-1",
]
UNICODE = [
    "ключ",
    "rg_" + "\uff41" * 16 + "_" + "\uff21" * 32,  # fullwidth letters
    "🔑" * 40,
    "rg_\u200b" + "a" * 16,
    "é" * 100,
]


@pytest.mark.parametrize("raw", INJECTIONS)
def test_injection_strings_are_401(harness: Harness, raw: str) -> None:
    for path in ("/v1/keys", "/v1/chat/completions", "/v1/models"):
        _assert_401(harness.client(raw).get(path))
    assert harness.client().get("/v1/keys").status_code == 200  # the table is intact


@pytest.mark.parametrize("raw", UNICODE)
def test_unicode_keys_are_401(harness: Harness, raw: str) -> None:
    client = TestClient(harness.app, raise_server_exceptions=False)
    for path in ("/v1/keys", "/v1/chat/completions"):
        response = client.get(path, headers={"Authorization": b"Bearer " + raw.encode()})
        _assert_401(response)


def test_ten_megabyte_key_is_401_without_hashing_it(harness: Harness) -> None:
    huge = "rg_" + "a" * (10 * 1024 * 1024)
    calls: list[str] = []
    original = harness.platform.authenticator._lookup

    def counting(key_id: str, secret: str) -> Any:
        calls.append(key_id)
        return original(key_id, secret)

    harness.platform.authenticator._lookup = counting  # type: ignore[method-assign]
    client = TestClient(harness.app, raise_server_exceptions=False)
    for path in ("/v1/keys", "/v1/chat/completions", "/v1/endpoints/x"):
        _assert_401(client.get(path, headers={"Authorization": f"Bearer {huge}"}))
    assert calls == []  # refused on length, never reached the store


def test_authenticator_refuses_huge_and_odd_strings_directly(harness: Harness) -> None:
    authenticator = harness.platform.authenticator
    for raw in ["rg_" + "a" * 10_000_000, "", " ", "\x00" * 64, *INJECTIONS, *UNICODE]:
        assert authenticator.authenticate(raw) is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.one_of(
        st.text(max_size=200),
        st.from_regex(r"rg_[a-z0-9]{16}_[A-Za-z0-9_-]{32}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_-]{32}", fullmatch=True),
    )
)
def test_a_string_never_minted_never_authenticates(harness: Harness, raw: str) -> None:
    minted_key = harness.admin_key
    key_id = minted_key.split("_")[1]
    # Also graft random secrets onto the real key id: only the real secret opens it.
    for candidate in (raw, f"rg_{key_id}_{raw}"):
        if candidate == minted_key:
            continue
        assert harness.platform.authenticator.authenticate(candidate) is None


# ---- S3: the raw secret is never stored, logged or echoed --------------------------------


def test_secret_never_in_logs_responses_or_db(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = _open(home, log_level="debug")
    try:
        created = _mint(h, scopes=["inference:*"])
        raw = created["key"]
        secret = raw.split("_", 2)[2]
        bodies: list[str] = []
        admin = h.client()
        user = h.client(raw)
        calls = [
            admin.get("/v1/keys"),
            admin.get(f"/v1/keys/{created['id']}"),
            admin.post("/v1/keys", json={"name": "x", "bogus": raw}),
            admin.post("/v1/keys", json={"name": raw, "scopes": [raw]}),
            admin.post("/v1/keys", content=raw, headers={"content-type": "application/json"}),
            user.get("/v1/models"),
            user.post("/v1/chat/completions", json={"model": "nothing", "messages": []}),
            user.post(
                "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
            ),
            user.get("/v1/keys"),
            user.post("/v1/keys", json={"name": "wider", "scopes": ["admin"]}),
            h.client(raw + "x").get("/v1/keys"),
            h.client(raw[:-1]).get("/v1/models"),
            TestClient(h.app).get("/v1/keys", headers={"Authorization": f"Basic {raw}"}),
            admin.delete(f"/v1/keys/{created['id']}"),
            user.get("/v1/models"),
            admin.get("/v1/keys/" + raw),
            admin.get("/metrics"),  # metrics labels never carry a key
        ]
        for response in calls:
            bodies.append(
                response.text + " " + " ".join(f"{k}: {v}" for k, v in response.headers.items())
            )
        assert any(r.status_code == 403 for r in calls) and any(r.status_code == 401 for r in calls)
    finally:
        h.platform.close()
    # The creating response shows the key once; nothing else may.
    hits = [body[:300] for body in bodies if secret in body]
    assert hits == []
    # httpx logs the test client's own request lines; everything else is the server's.
    server_logs = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert len(server_logs) > 0
    assert not [line for line in server_logs if secret in line]
    for path in home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"secret found in {path}"


def test_gateway_errors_do_not_echo_a_key(harness: Harness) -> None:
    raw = _mint(harness, scopes=["inference:*"])["key"]
    response = harness.client(raw).post("/v1/chat/completions", json={"model": raw, "messages": []})
    assert response.status_code == 404
    assert raw.split("_", 2)[2] not in response.text


# ---- S4: expired and revoked keys ---------------------------------------------------------


def test_expired_key_is_401_once_the_clock_passes_expiry(harness: Harness) -> None:
    created = _mint(harness, scopes=["inference:*"], expires_in_seconds=3600)
    user = harness.client(created["key"])
    assert user.get("/v1/models").status_code == 200
    harness.time.advance(3599)
    assert user.get("/v1/models").status_code == 200
    harness.time.advance(2)
    _assert_401(user.get("/v1/models"))
    # The API stamps expiry from the real clock; the fake one is already 3601 s ahead.
    admin_expiring = _mint(harness, scopes=["admin"], expires_in_seconds=7200)
    admin = harness.client(admin_expiring["key"])
    assert admin.get("/v1/keys").status_code == 200
    harness.time.advance(3600)  # expiry beats the cache: checked on every call
    _assert_401(admin.get("/v1/keys"))


def test_revoked_key_is_401_at_once_here(harness: Harness) -> None:
    created = _mint(harness, scopes=["inference:*"])
    user = harness.client(created["key"])
    assert user.get("/v1/models").status_code == 200  # now cached
    assert harness.client().delete(f"/v1/keys/{created['id']}").status_code == 200
    _assert_401(user.get("/v1/models"))
    _assert_401(user.post("/v1/chat/completions", json={"model": "x", "messages": []}))


def test_revoked_elsewhere_is_401_within_key_cache_seconds(harness: Harness) -> None:
    """Revocation by another process (straight in the store) ends within the cache time."""
    created = _mint(harness, scopes=["inference:*"])
    user = harness.client(created["key"])
    assert user.get("/v1/models").status_code == 200
    with harness.platform.db.write() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None
        row.revoked_at = datetime.now(UTC)
    cache_seconds = harness.platform.settings.key_cache_seconds
    harness.time.advance(cache_seconds / 2)
    assert user.get("/v1/models").status_code == 200  # documented: up to key_cache_seconds
    harness.time.advance(cache_seconds / 2 + 0.01)
    _assert_401(user.get("/v1/models"))


def test_revoking_twice_and_revoked_admin_key(harness: Harness) -> None:
    second_admin = _mint(harness, scopes=["admin"])
    admin2 = harness.client(second_admin["key"])
    assert admin2.get("/v1/keys").status_code == 200
    first = harness.client().delete(f"/v1/keys/{second_admin['id']}")
    again = harness.client().delete(f"/v1/keys/{second_admin['id']}")
    assert first.status_code == again.status_code == 200
    assert first.json()["revoked_at"] == again.json()["revoked_at"]
    _assert_401(admin2.get("/v1/keys"))


# ---- S6: two tenants ----------------------------------------------------------------------


def _second_account(h: Harness, name: str = "tenant-b") -> str:
    response = h.client().post("/v1/accounts", json={"name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["admin_key"].startswith("rg_")
    return body["admin_key"]  # type: ignore[no-any-return]


def _add_model_and_endpoint(client: TestClient, model: str, endpoint: str) -> dict[str, Any]:
    gguf = demo_gguf_path()
    assert gguf is not None, "the demo model package is needed"
    added = client.post(
        "/v1/library/models", json={"url": str(gguf), "name": model, "version": "1.0"}
    )
    assert added.status_code == 201, added.text
    created = client.post(
        "/v1/endpoints",
        json={"name": endpoint, "model": model, "version": "1.0", "instance_type": "cpu-small"},
    )
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


_GHOSTS = {
    "id": "ep_0000000000000000",
    "key": "0000000000000000",
    "model": "model-zz",
    "mid": "mdl_00",
}


def _swap_ids(
    path: str,
    body: Any,
    endpoint: dict[str, Any],
    key: dict[str, Any],
    model_id: str,
    version_id: str,
) -> tuple[str, Any]:
    swaps = [
        (endpoint["id"], _GHOSTS["id"]),
        (endpoint["name"], "endpoint-zz"),
        (key["id"], _GHOSTS["key"]),
        (model_id, _GHOSTS["mid"]),
        (version_id, "ver_00"),
        ("model-a", _GHOSTS["model"]),
    ]
    text = path + "\x00" + repr(body)
    for real, ghost in swaps:
        path = path.replace(real, ghost)
        if isinstance(body, dict) and body.get("model") == real:
            body = {**body, "model": ghost}
    del text
    return path, body


def _normalised(text: str, path: str, body: Any) -> str:
    """The response with the caller's own identifiers blanked (quoting input leaks nothing)."""
    for part in [*path.split("/"), *(str(v) for v in (body or {}).values())]:
        if len(part) > 3:
            text = text.replace(part, "<id>")
    return text


def test_tenants_cannot_touch_each_others_ids(harness: Harness) -> None:
    a = harness.client()
    b_key = _second_account(harness)
    b = harness.client(b_key)
    a_key = _mint(harness, name="a-user", scopes=["inference:*"])
    a_endpoint = _add_model_and_endpoint(a, "model-a", "endpoint-a")
    a_version_id = a.get("/v1/library/models/model-a").json()["versions"][0]["id"]
    a_model_id = a.get("/v1/library/models/model-a").json()["id"]
    _add_model_and_endpoint(b, "model-b", "endpoint-b")
    me_b = b.get("/v1/accounts/me").json()

    ep_ids = [a_endpoint["id"], a_endpoint["name"]]
    requests: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/keys/{a_key['id']}", None),
        ("DELETE", f"/v1/keys/{a_key['id']}", None),
        ("GET", "/v1/library/models/model-a", None),
        ("GET", f"/v1/library/models/{a_model_id}", None),
        ("GET", "/v1/library/models/model-a/versions/1.0", None),
        ("GET", f"/v1/library/models/{a_model_id}/versions/{a_version_id}", None),
        ("DELETE", "/v1/library/models/model-a", None),
        ("POST", "/v1/endpoints", {"name": "steal", "model": "model-a", "version": "1.0"}),
    ]
    for ep in ep_ids:
        requests += [
            ("GET", f"/v1/endpoints/{ep}", None),
            ("PATCH", f"/v1/endpoints/{ep}", {"replicas": 0}),
            ("DELETE", f"/v1/endpoints/{ep}", None),
            (
                "POST",
                f"/v1/endpoints/{ep}/canary",
                {"new_version": "1.0", "traffic_percentage": 10},
            ),
            ("PUT", f"/v1/endpoints/{ep}/traffic", {"version_traffic": {"1.0": 100}}),
            ("POST", f"/v1/endpoints/{ep}/rollback", {}),
            ("POST", f"/v1/endpoints/{ep}/promote", None),
        ]
    leaks = []
    for method, path, body in requests:
        response = b.request(method, path, json=body)
        # The same request naming ids that exist nowhere: A's must look exactly alike.
        twin_path, twin_body = _swap_ids(path, body, a_endpoint, a_key, a_model_id, a_version_id)
        twin = b.request(method, twin_path, json=twin_body)
        same = _normalised(response.text, path, body) == _normalised(
            twin.text, twin_path, twin_body
        )
        if (
            response.status_code not in (404, 422)
            or response.status_code != twin.status_code
            or not same
        ):
            leaks.append(
                f"{method} {path}: {response.status_code} {response.text[:200]} / {twin.text[:200]}"
            )
    assert not leaks, "\n".join(leaks)
    # Lists show only B's objects; the gateway does not reach A's endpoint.
    for path in ("/v1/keys", "/v1/endpoints", "/v1/library/models"):
        listing = b.get(path)
        assert listing.status_code == 200
        assert a_endpoint["id"] not in listing.text and a_key["id"] not in listing.text
        assert "model-a" not in listing.text and "endpoint-a" not in listing.text
    assert all(m["id"] not in ("endpoint-a", "model-a") for m in b.get("/v1/models").json()["data"])
    chat = b.post(
        "/v1/chat/completions",
        json={"model": "endpoint-a", "messages": [{"role": "user", "content": "x"}]},
    )
    assert chat.status_code == 404
    # B is not a superadmin: no account listing, no account creation.
    assert b.get("/v1/accounts").status_code == 403
    assert b.post("/v1/accounts", json={"name": "tenant-c"}).status_code == 403
    assert me_b["name"] == "tenant-b"
    # Nothing of A changed.
    assert a.get(f"/v1/keys/{a_key['id']}").json()["revoked_at"] is None
    after = a.get(f"/v1/endpoints/{a_endpoint['id']}").json()
    assert after["replicas"] == a_endpoint["replicas"] and after["status"] != "deleted"
    assert a.get("/v1/library/models/model-a").status_code == 200


def test_duplicate_account_name_is_409(harness: Harness) -> None:
    _second_account(harness, "dup")
    response = harness.client().post("/v1/accounts", json={"name": "dup"})
    assert response.status_code == 409
    assert response.json()["error"]["param"] == "name"


# ---- S7: mass assignment and roles --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field_name"),
    [
        ("/v1/keys", {"name": "k", "account_id": "acct_x"}, "account_id"),
        ("/v1/keys", {"name": "k", "secret_hash": "0" * 64}, "secret_hash"),
        ("/v1/keys", {"name": "k", "revoked_at": None}, "revoked_at"),
        ("/v1/keys", {"name": "k", "id": "0000000000000000"}, "id"),
        ("/v1/keys", {"name": "k", "created_by_key_id": "x"}, "created_by_key_id"),
        ("/v1/accounts", {"name": "acct", "is_superadmin": True}, "is_superadmin"),
        ("/v1/accounts", {"name": "acct", "id": "acct_x"}, "id"),
        ("/v1/endpoints", {"name": "e", "model": "m", "account_id": "acct_x"}, "account_id"),
        ("/v1/endpoints", {"name": "e", "model": "m", "price_per_hour": "0"}, "price_per_hour"),
        ("/v1/library/models", {"url": "/x", "account_id": "acct_x"}, "account_id"),
    ],
)
def test_unknown_fields_are_422_naming_the_field(
    harness: Harness, path: str, body: dict[str, Any], field_name: str
) -> None:
    before = _count_keys(harness)
    response = harness.client().post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == field_name and field_name in error["message"]
    assert _count_keys(harness) == before


def _count_keys(h: Harness) -> int:
    with h.platform.db.read() as session:
        return len(session.scalars(select(ApiKey.id)).all())


def test_inference_keys_get_403_on_control_routes(harness: Harness) -> None:
    _add_model_and_endpoint(harness.client(), "model-a", "endpoint-a")
    for scopes in (["inference:*"], ["inference:endpoint-a"]):
        user = harness.client(_mint(harness, scopes=scopes)["key"])
        before = _count_keys(harness)
        calls = [
            ("GET", "/v1/keys", None),
            ("POST", "/v1/keys", {"name": "w", "scopes": ["admin"]}),
            ("POST", "/v1/keys", {"name": "w", "scopes": ["inference:*"]}),
            ("POST", "/v1/keys", {"name": "w", "scopes": scopes}),
            ("GET", "/v1/accounts/me", None),
            ("GET", "/v1/accounts", None),
            ("POST", "/v1/accounts", {"name": "mine"}),
            ("GET", "/v1/endpoints", None),
            ("PATCH", "/v1/endpoints/endpoint-a", {"replicas": 3}),
            ("DELETE", "/v1/endpoints/endpoint-a", None),
            ("GET", "/v1/library/models", None),
            ("DELETE", "/v1/library/models/model-a", None),
        ]
        wrong = []
        for method, path, body in calls:
            response = user.request(method, path, json=body)
            if (
                response.status_code != 403
                or response.json()["error"]["type"] != "permission_error"
            ):
                wrong.append(f"{method} {path}: {response.status_code}")
        assert not wrong, wrong
        assert _count_keys(harness) == before
        assert harness.client().get("/v1/endpoints/endpoint-a").json()["replicas"] == 1


def test_inference_key_cannot_set_scopes_or_account_even_with_extra_fields(
    harness: Harness,
) -> None:
    user = harness.client(_mint(harness, scopes=["inference:*"])["key"])
    before = _count_keys(harness)
    for body in (
        {"name": "w", "scopes": ["admin"], "account_id": "acct_other"},
        {"name": "w", "scopes": ["admin"], "is_superadmin": True},
    ):
        response = user.post("/v1/keys", json=body)
        assert response.status_code in (403, 422), response.text
    assert _count_keys(harness) == before


def test_admin_of_a_tenant_cannot_mint_outside_its_account(harness: Harness) -> None:
    b = harness.client(_second_account(harness))
    created = b.post("/v1/keys", json={"name": "b-admin", "scopes": ["admin"]}).json()
    key_b = harness.client(created["key"])
    assert key_b.get("/v1/accounts").status_code == 403  # admin of B is not the superadmin
    ids_of_a = {k["id"] for k in harness.client().get("/v1/keys").json()["data"]}
    assert created["id"] not in ids_of_a


def test_bad_scopes_are_422(harness: Harness) -> None:
    for scopes in (
        [],
        ["superadmin"],
        ["inference:"],
        ["inference:../x"],
        ["admin "],
        ["INFERENCE:*"],
    ):
        response = harness.client().post("/v1/keys", json={"name": "k", "scopes": scopes})
        assert response.status_code == 422, (scopes, response.text)
        assert response.json()["error"]["param"] == "scopes"


def test_key_listing_shows_prefix_never_secret_or_hash(harness: Harness) -> None:
    created = _mint(harness, scopes=["inference:*"])
    secret = created["key"].split("_", 2)[2]
    listing = harness.client().get("/v1/keys").json()["data"]
    row = next(k for k in listing if k["id"] == created["id"])
    assert row["prefix"] == f"rg_{created['id']}"
    assert "key" not in row and "secret_hash" not in row
    assert secret not in str(listing)
