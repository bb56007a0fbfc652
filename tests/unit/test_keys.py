"""Keys: format, hashing, parsing, scopes, grant rules, and the caching authenticator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regolo.server.accounts import bootstrap, create_account
from regolo.server.errors import PermissionDenied, ValidationFailed, redact_keys
from regolo.server.keys import (
    KeyAuthenticator,
    check_grantable,
    hash_secret,
    mint_key,
    parse_key,
    validate_scopes,
)
from regolo.server.specs import Principal
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade
from regolo.server.store.tables import ApiKey


def test_minted_keys_look_right_and_differ() -> None:
    keys = [mint_key() for _ in range(200)]
    for key in keys:
        assert re.fullmatch(r"rg_[a-z0-9]{16}_[A-Za-z0-9_-]{32}", key.raw)
        assert key.prefix == f"rg_{key.key_id}" and key.raw.startswith(key.prefix + "_")
        secret = key.raw.split("_", 2)[2]
        assert key.secret_hash == hash_secret(secret) and secret not in key.secret_hash
        assert parse_key(key.raw) == (key.key_id, secret)
    assert len({k.raw for k in keys}) == len({k.key_id for k in keys}) == 200


def test_secret_has_at_least_128_bits() -> None:
    # 32 urlsafe-base64 characters carry 6 bits each.
    assert len(mint_key().raw.split("_", 2)[2]) * 6 >= 128


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "rg_",
        "rg_x_y",
        "rg_" + "A" * 16 + "_" + "a" * 32,
        "rg_" + "a" * 16 + "_" + "a" * 31,
        "x" * 65,
        "rg_" + "a" * 16 + "_" + "a" * 32 + "\n",
        " rg_" + "a" * 16 + "_" + "a" * 32,
    ],
)
def test_parse_rejects_malformed(raw: str) -> None:
    assert parse_key(raw) is None


def test_parse_refuses_long_strings_before_matching() -> None:
    assert parse_key("rg_" + "a" * 10_000_000) is None


def test_redact_keys_masks_only_the_secret() -> None:
    key = mint_key()
    text = f"unknown scope {key.raw!r} and again {key.raw}"
    redacted = redact_keys(text)
    assert key.raw.split("_", 2)[2] not in redacted
    assert redacted.count(key.prefix + "_***") == 2
    assert redact_keys("nothing to see") == "nothing to see"


@pytest.mark.parametrize(
    ("scopes", "cleaned"),
    [
        (["admin"], ["admin"]),
        (["inference:*", "admin", "admin"], ["admin", "inference:*"]),
        (["inference:sentiment-api"], ["inference:sentiment-api"]),
    ],
)
def test_validate_scopes(scopes: list[str], cleaned: list[str]) -> None:
    assert validate_scopes(scopes) == cleaned


@pytest.mark.parametrize(
    "scopes",
    [
        [],
        ["root"],
        ["inference:"],
        ["inference:-x"],
        ["inference:A"],
        ["inference:a/b"],
        ["admin\n"],
    ],
)
def test_validate_scopes_refuses(scopes: list[str]) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_scopes(scopes)
    assert info.value.param == "scopes"


def _principal(*scopes: str) -> Principal:
    return Principal(account_id="acct_1", key_id="k", scopes=frozenset(scopes))


def test_only_admin_keys_may_grant() -> None:
    check_grantable(_principal("admin"), ["admin"])
    check_grantable(_principal("admin"), ["inference:*"])
    for creator in (_principal("inference:*"), _principal("inference:x")):
        for scopes in (["admin"], ["inference:*"], ["inference:x"]):
            with pytest.raises(PermissionDenied):
                check_grantable(creator, scopes)


# ---- the authenticator ----------------------------------------------------------------


class Clocks:
    def __init__(self) -> None:
        self.wall = datetime.now(UTC)
        self.mono = 0.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    upgrade(database.write_engine)
    return database


def _authenticator(db: Database, clocks: Clocks, cache_seconds: float = 5.0) -> KeyAuthenticator:
    return KeyAuthenticator(
        db, cache_seconds=cache_seconds, clock=lambda: clocks.wall, monotonic=lambda: clocks.mono
    )


def test_bootstrap_key_authenticates_as_superadmin(db: Database, tmp_path: Path) -> None:
    raw = bootstrap(db, tmp_path)
    assert raw is not None and bootstrap(db, tmp_path) is None  # only on first start
    assert (tmp_path / "admin-key").read_text().strip() == raw
    assert (tmp_path / "admin-key").stat().st_mode & 0o777 == 0o600
    principal = _authenticator(db, Clocks()).authenticate(raw)
    assert principal is not None and principal.is_superadmin and principal.is_admin


def test_new_account_admin_is_not_superadmin(db: Database) -> None:
    with db.write() as session:
        _, raw = create_account(session, "tenant")
    principal = _authenticator(db, Clocks()).authenticate(raw)
    assert principal is not None and principal.is_admin and not principal.is_superadmin


def test_wrong_secret_for_a_real_id_fails(db: Database) -> None:
    with db.write() as session:
        _, raw = create_account(session, "tenant")
    prefix, secret = raw.rsplit("_", 1)[0], raw.split("_", 2)[2]
    authenticator = _authenticator(db, Clocks())
    flipped = ("B" if secret[0] == "A" else "A") + secret[1:]
    assert authenticator.authenticate(f"{prefix}_{flipped}") is None
    assert authenticator.authenticate(raw) is not None
    assert (
        authenticator.authenticate(f"{prefix}_{flipped}") is None
    )  # the cache holds raw keys only


def test_expiry_is_checked_on_every_call_even_when_cached(db: Database) -> None:
    clocks = Clocks()
    with db.write() as session:
        _, raw = create_account(session, "tenant")
        key = session.query(ApiKey).one()
        key.expires_at = clocks.wall + timedelta(seconds=10)
    authenticator = _authenticator(db, clocks, cache_seconds=3600)
    assert authenticator.authenticate(raw) is not None
    clocks.wall += timedelta(seconds=10)  # only wall time: the cache entry is still fresh
    assert authenticator.authenticate(raw) is None


def test_revocation_elsewhere_takes_effect_after_cache_seconds(db: Database) -> None:
    clocks = Clocks()
    with db.write() as session:
        _, raw = create_account(session, "tenant")
    authenticator = _authenticator(db, clocks, cache_seconds=5)
    assert authenticator.authenticate(raw) is not None
    with db.write() as session:
        session.query(ApiKey).one().revoked_at = datetime.now(UTC)
    clocks.advance(4.9)
    assert authenticator.authenticate(raw) is not None
    clocks.advance(0.2)
    assert authenticator.authenticate(raw) is None


def test_forget_drops_the_cache_at_once(db: Database) -> None:
    clocks = Clocks()
    with db.write() as session:
        _, raw = create_account(session, "tenant")
    authenticator = _authenticator(db, clocks, cache_seconds=3600)
    principal = authenticator.authenticate(raw)
    assert principal is not None
    with db.write() as session:
        session.query(ApiKey).one().revoked_at = datetime.now(UTC)
    authenticator.forget(principal.key_id)
    assert authenticator.authenticate(raw) is None


@given(st.text(max_size=100))
def test_arbitrary_text_never_authenticates(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    # No store behind it: anything that is not key-shaped never reaches one.
    authenticator = KeyAuthenticator(None, cache_seconds=5)  # type: ignore[arg-type]
    if parse_key(text) is None:
        assert authenticator.authenticate(text) is None
