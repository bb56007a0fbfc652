"""Where the SDK finds its API key and server: arguments, then the environment.

This is the one place the SDK reads the environment or the file system.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_KEY_VARIABLES = ("REGOLO_API_KEY", "API_KEY")
BASE_URL_VARIABLES = ("REGOLO_BASE_URL", "REGOLO_URL")
ADMIN_KEY_FILE = "admin-key"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    api_key: str | None
    base_url: str


def resolve_config(
    api_key: str | None = None,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Arguments win over the environment; a local server falls back to its admin key."""
    env = os.environ if env is None else env
    url = (base_url or _first(env, BASE_URL_VARIABLES) or DEFAULT_BASE_URL).rstrip("/")
    key = api_key or _first(env, API_KEY_VARIABLES)
    if key is None and is_loopback(url):
        key = read_admin_key(regolo_home(env))
    return ClientConfig(api_key=key, base_url=url)


def regolo_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("REGOLO_HOME") or Path.home() / ".regolo")


def read_admin_key(home: Path) -> str | None:
    """The admin key ``regolo serve`` writes on first start, if it is there."""
    try:
        return (home / ADMIN_KEY_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def is_loopback(url: str) -> bool:
    # Only a server on this machine may receive the locally stored admin key.
    return (urlsplit(url).hostname or "") in _LOOPBACK_HOSTS


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None
