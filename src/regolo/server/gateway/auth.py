"""How the gateway learns who is calling: a bearer key in, a ``Principal`` (or nothing) out."""

from __future__ import annotations

from typing import Protocol

from regolo.server.specs import Principal

_BEARER = b"bearer "
_MAX_KEY_BYTES = 512  # longer strings are never keys; refuse them without hashing (S2)


class Authenticator(Protocol):
    """Verified keys are cached in memory; only a cache miss needs the store."""

    def authenticate_cached(self, bearer: str) -> tuple[bool, Principal | None]:
        """(answered, principal) from memory alone; answered False means: ask the store."""
        ...

    def authenticate(self, bearer: str) -> Principal | None:
        """The full check, store lookup included (blocking: the gateway runs it on a thread)."""
        ...


def bearer_token(authorization: bytes | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, else ``None``."""
    if not authorization or len(authorization) > _MAX_KEY_BYTES + len(_BEARER):
        return None
    if authorization[:7].lower() != _BEARER:
        return None
    token = authorization[7:].strip()
    if not token:
        return None
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return None
