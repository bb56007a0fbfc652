"""Dashboard sessions: the API key sealed in an HTTP-only cookie, plus a CSRF token.

The cookie is encrypted and authenticated (Fernet: AES-CBC + HMAC-SHA256) with a secret
kept under ``$REGOLO_HOME`` (mode 0600), so the browser holds the key but cannot read it
back, and a tampered or expired cookie is simply no session.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

COOKIE_NAME = "regolo_session"
LOGIN_CSRF_COOKIE = "regolo_login_csrf"
SESSION_SECONDS = 12 * 3600
SECRET_FILE = "dashboard-secret"


@dataclass(frozen=True)
class DashboardSession:
    api_key: str
    csrf_token: str
    key_prefix: str
    account_name: str


def load_or_create_secret(home: Path) -> bytes:
    """The sealing secret; created once with mode 0600 (never world-readable, even briefly)."""
    path = home / SECRET_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    secret = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def _read_secret(path: Path) -> bytes:
    # Another process may have created the file a moment ago and not yet written it.
    for _ in range(100):
        secret = path.read_bytes().strip()
        if secret:
            return secret
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty; delete it to mint a new dashboard secret")


class SessionCodec:
    def __init__(self, secret: bytes, *, max_age_seconds: int = SESSION_SECONDS) -> None:
        self._fernet = Fernet(secret)
        self.max_age_seconds = max_age_seconds

    def seal(self, session: DashboardSession) -> str:
        payload = json.dumps(session.__dict__).encode()
        return self._fernet.encrypt(payload).decode()

    def open(self, cookie: str | None) -> DashboardSession | None:
        if not cookie or len(cookie) > 4096:
            return None
        try:
            payload = self._fernet.decrypt(cookie.encode(), ttl=self.max_age_seconds)
            return DashboardSession(**json.loads(payload))
        except (InvalidToken, ValueError, TypeError):
            return None


def new_session(api_key: str, *, account_name: str) -> DashboardSession:
    return DashboardSession(
        api_key=api_key,
        csrf_token=secrets.token_urlsafe(32),
        key_prefix=key_prefix(api_key),
        account_name=account_name,
    )


def key_prefix(api_key: str) -> str:
    """The visible part of a key (``rg_<id>``); never the secret part."""
    parts = api_key.split("_")
    return "_".join(parts[:2]) if len(parts) >= 3 else api_key[:6]


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
