"""API keys: ``rg_<id>_<secret>``; only a SHA-256 of the secret is stored.

The secret has 192 bits from ``secrets``, so a plain SHA-256 is a sufficient hash
(no password stretching needed) and verification is one constant-time compare.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from regolo.server.errors import PermissionDenied, ValidationFailed
from regolo.server.specs import Principal
from regolo.server.store.database import Database
from regolo.server.store.tables import Account, ApiKey

KEY_PATTERN = re.compile(r"rg_([a-z0-9]{16})_([A-Za-z0-9_-]{32})")
MAX_KEY_LENGTH = 64
SCOPE_PATTERN = re.compile(r"admin|inference:\*|inference:[a-z0-9][a-z0-9-]{0,62}")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MintedKey:
    key_id: str
    raw: str
    prefix: str
    secret_hash: str


def mint_key() -> MintedKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(24)  # 32 characters, 192 bits
    return MintedKey(
        key_id=key_id,
        raw=f"rg_{key_id}_{secret}",
        prefix=f"rg_{key_id}",
        secret_hash=hash_secret(secret),
    )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(raw: str) -> tuple[str, str] | None:
    if len(raw) > MAX_KEY_LENGTH:
        return None
    match = KEY_PATTERN.fullmatch(raw)
    return (match.group(1), match.group(2)) if match else None


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted(set(scopes))
    if not cleaned:
        raise ValidationFailed("a key needs at least one scope", param="scopes")
    for scope in cleaned:
        if not SCOPE_PATTERN.fullmatch(scope):
            raise ValidationFailed(
                f"unknown scope {scope!r}: use admin, inference:* or inference:<endpoint>",
                param="scopes",
            )
    return cleaned


def check_grantable(creator: Principal, scopes: Iterable[str]) -> None:
    """A key can never create a key with wider scopes than its own.

    Only admin keys reach the key routes, and ``admin`` is the widest scope inside an
    account, so a non-admin creator may grant nothing.
    """
    if not creator.is_admin:
        raise PermissionDenied("only an admin key may create keys", param="scopes")
    del scopes


def principal_for(key: ApiKey, account: Account) -> Principal:
    return Principal(
        account_id=key.account_id,
        key_id=key.id,
        scopes=frozenset(key.scopes),
        is_superadmin=account.is_superadmin and "admin" in key.scopes,
        rate_limit_rpm=key.rate_limit_rpm,
        rate_limit_tpm=key.rate_limit_tpm,
    )


class KeyAuthenticator:
    """Verifies keys against the store, caching verified keys for ``cache_seconds``.

    A revoked or expired key stops working within ``cache_seconds`` in every process,
    and at once in this one (``forget``). Expiry is checked on every call.
    """

    def __init__(
        self,
        db: Database,
        *,
        cache_seconds: float,
        clock: Clock = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic  # cache ages; injectable so tests move time (S4)
        self._cache: dict[str, tuple[Principal, datetime | None, float]] = {}
        self._lock = threading.Lock()

    def authenticate_cached(self, bearer: str) -> tuple[bool, Principal | None]:
        """(answered, principal) without touching the store: answered is False when only
        a store lookup can tell, so async callers can do that lookup off their event loop."""
        cached = self._cache.get(bearer)  # only well-formed keys are ever cached
        if cached is None:
            return parse_key(bearer) is None, None
        if self._monotonic() - cached[2] >= self._cache_seconds:
            return False, None
        principal, expires_at, _ = cached
        if expires_at is not None and expires_at <= self._clock():
            return True, None
        return True, principal

    async def authenticate_async(self, bearer: str) -> Principal | None:
        answered, principal = self.authenticate_cached(bearer)
        if answered:
            return principal
        return await asyncio.to_thread(self.authenticate, bearer)

    def authenticate(self, bearer: str) -> Principal | None:
        parsed = parse_key(bearer)
        if parsed is None:
            return None
        now = self._monotonic()
        cached = self._cache.get(bearer)
        if cached and now - cached[2] < self._cache_seconds:
            principal, expires_at = cached[0], cached[1]
        else:
            found = self._lookup(*parsed)
            if found is None:
                self._cache.pop(bearer, None)
                return None
            principal, expires_at = found
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[bearer] = (principal, expires_at, now)
        if expires_at is not None and expires_at <= self._clock():
            return None
        return principal

    def forget(self, key_id: str) -> None:
        with self._lock:
            for raw in [raw for raw, entry in self._cache.items() if entry[0].key_id == key_id]:
                del self._cache[raw]

    def _lookup(self, key_id: str, secret: str) -> tuple[Principal, datetime | None] | None:
        with self._db.read() as session:
            row = session.execute(
                select(ApiKey, Account).join(Account).where(ApiKey.id == key_id)
            ).first()
        if row is None:
            hmac.compare_digest(hash_secret(secret), hash_secret(""))  # same work either way
            return None
        key, account = row
        if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            return None
        if key.revoked_at is not None:
            return None
        return principal_for(key, account), key.expires_at
