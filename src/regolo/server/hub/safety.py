"""Validators for everything a user or a remote repository can name (RELIABILITY S8, S9).

Two threats meet here:

- SSRF (S8): "add model by URL" must never make the server connect anywhere but the
  Hugging Face hub or the operator's configured mirror. The user's URL is only *parsed*
  for a repo id and a revision; connections always go to the configured endpoint, and a
  guard on the HTTP client (``hub.http_guard``) refuses any other host, redirects included.
- Path traversal (S9): model names, version labels, revisions and file names from a
  repository listing end up in paths under ``$REGOLO_HOME``; each is checked here, and
  ``safe_join`` proves the joined path stays inside its root.

Every check raises ``InvalidRequest`` (400) naming the parameter; none touches the network
or the file system, except ``safe_join`` which resolves symlinks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from regolo.server.errors import InvalidRequest

HUB_HOSTS = frozenset({"huggingface.co", "www.huggingface.co"})

# Hosts the hub's /resolve route redirects large files to (signed URLs). Downloads may
# follow a redirect to these, and only these, unless the operator changes the setting.
DEFAULT_CDN_HOSTS = (
    "cdn-lfs.huggingface.co",
    "cdn-lfs.hf.co",
    "cdn-lfs-us-1.hf.co",
    "cdn-lfs-us-1.huggingface.co",
    "cdn-lfs-eu-1.hf.co",
    "cdn-lfs-eu-1.huggingface.co",
    "cas-bridge.xethub.hf.co",
)

MAX_REPO_PART = 96  # the hub's own cap on a namespace or a repo name
MAX_REVISION = 255
MAX_FILE_NAME = 1024
MAX_SLUG = 64

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+", re.ASCII)
_REVISION = re.compile(r"[A-Za-z0-9][\w.\-/]*", re.ASCII)
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Numeric host spellings that resolvers accept as IPv4: 2130706433, 0x7f000001, 0177.0.0.1, 127.1
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|\d+)(\.(0x[0-9a-f]*|\d+)){0,3}\.?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def validate_repo_id(repo_id: str, *, param: str = "url") -> str:
    """Return ``repo_id`` if it is a well-formed ``namespace/name`` hub id, else raise 400."""
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id):
        raise InvalidRequest(
            f"invalid Hugging Face repository id {_shown(repo_id)}: expected 'organization/name'",
            param=param,
        )
    namespace, name = repo_id.split("/")
    too_long = len(namespace) > MAX_REPO_PART or len(name) > MAX_REPO_PART
    if too_long or ".." in repo_id or "--" in repo_id or name.endswith((".", ".git")):
        raise InvalidRequest(f"invalid Hugging Face repository id {_shown(repo_id)}", param=param)
    return repo_id


def validate_revision(revision: str, *, param: str = "revision") -> str:
    """Return a branch, tag or commit sha that is safe in a URL and a path, else raise 400."""
    if (
        not isinstance(revision, str)
        or len(revision) > MAX_REVISION
        or not _REVISION.fullmatch(revision)
        or ".." in revision
        or "//" in revision
        or revision.endswith(("/", ".", ".lock"))
    ):
        raise InvalidRequest(f"invalid revision {_shown(revision)}", param=param)
    return revision


def validate_slug(value: str, *, param: str) -> str:
    """Return a model name or version label usable as one path component, else raise 400."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_SLUG
        or not _SLUG.fullmatch(value)
        or ".." in value
    ):
        raise InvalidRequest(
            f"invalid {param} {_shown(value)}: use up to {MAX_SLUG} letters, digits, '.', '_' "
            "or '-', starting with a letter or digit",
            param=param,
        )
    return value


def validate_repo_file_name(name: str, *, param: str = "file") -> str:
    """Return a relative POSIX file name from a repository listing, else raise 400.

    Refuses absolute names, ``..`` and ``.`` components, backslashes, control characters
    (NUL included) and percent escapes, so that no decoding step downstream can turn the
    name into a traversal.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_FILE_NAME:
        raise InvalidRequest(f"invalid file name {_shown(name)}", param=param)
    bad_chars = "\\" in name or ":" in name or _CONTROL.search(name) or _PERCENT_ESCAPE.search(name)
    parts = name.split("/")
    bad_parts = any(part in ("", ".", "..") or len(part) > 255 for part in parts)
    if bad_chars or bad_parts or name.startswith("~"):
        raise InvalidRequest(f"invalid file name {_shown(name)}", param=param)
    return name


def is_safe_repo_file_name(name: str) -> bool:
    try:
        validate_repo_file_name(name)
    except InvalidRequest:
        return False
    return True


def safe_join(root: Path, *parts: str, param: str = "path") -> Path:
    """Join ``parts`` under ``root`` and prove the result (symlinks resolved) stays inside it.

    >>> safe_join(Path("/srv/models"), "llama", "1.0")  # doctest: +SKIP
    PosixPath('/srv/models/llama/1.0')
    """
    for part in parts:
        validate_repo_file_name(part, param=param)
    base = root.resolve()
    joined = base.joinpath(*parts).resolve()
    if joined != base and not joined.is_relative_to(base):
        raise InvalidRequest("path escapes its root directory", param=param)
    return joined


def is_ip_literal(host: str) -> bool:
    """True for any spelling of an IP address: dotted, integer, hex, octal, bracketed v6."""
    bare = host.strip("[]").split("%")[0]
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return bool(_NUMERIC_HOST.fullmatch(bare))
    return True


@dataclass(frozen=True, kw_only=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class HostPolicy:
    """Which origins the hub client may reach: the hub, the configured mirror, the CDN list."""

    endpoint: Origin
    endpoint_path: str = ""
    cdn_hosts: frozenset[str] = frozenset(DEFAULT_CDN_HOSTS)

    @classmethod
    def for_endpoint(
        cls, hf_endpoint: str, *, cdn_hosts: Iterable[str] = DEFAULT_CDN_HOSTS
    ) -> HostPolicy:
        parts = _split_endpoint(hf_endpoint)
        origin = Origin(scheme=parts.scheme, host=_host(parts), port=_port(parts))
        hosts = frozenset(h.lower() for h in cdn_hosts)
        return cls(endpoint=origin, endpoint_path=parts.path.rstrip("/"), cdn_hosts=hosts)

    def is_user_url_host(self, origin: Origin) -> bool:
        """A URL a user typed may name the public hub or the configured endpoint."""
        public = Origin(scheme="https", host=origin.host, port=443)
        return origin == self.endpoint or (origin == public and origin.host in HUB_HOSTS)

    def may_connect(self, origin: Origin) -> bool:
        """The download client may connect to the endpoint, the hub, or a listed CDN host."""
        if origin == self.endpoint:
            return True
        https = origin.scheme == "https" and origin.port == 443
        return https and (origin.host in HUB_HOSTS or origin.host in self.cdn_hosts)


def url_origin(url: str, *, param: str = "url") -> tuple[Origin, SplitResult]:
    """Split ``url`` and return its origin, refusing anything a resolver could misread.

    Refused: userinfo (``user@host``), IP literals in any encoding (unless handled by the
    caller as the exact configured endpoint), schemes other than http(s), bad ports,
    backslashes, whitespace and control characters.
    """
    if not isinstance(url, str) or _CONTROL.search(url) or "\\" in url or " " in url:
        raise InvalidRequest("the URL contains characters that are not allowed", param=param)
    try:
        parts = urlsplit(url)
        host = _host(parts)
        port = _port(parts)
    except ValueError:
        raise InvalidRequest("the URL is not well formed", param=param) from None
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise InvalidRequest("only https URLs of the Hugging Face hub are accepted", param=param)
    if "@" in parts.netloc:
        raise InvalidRequest("URLs with user information are not accepted", param=param)
    return Origin(scheme=parts.scheme, host=host, port=port), parts


def check_connect_url(url: str, policy: HostPolicy) -> Origin:
    """Raise ``HostRefused`` unless the hub client may connect to ``url``."""
    try:
        origin, _ = url_origin(url)
    except InvalidRequest as exc:
        raise HostRefused(url, exc.message) from None
    if origin != policy.endpoint and is_ip_literal(origin.host):
        raise HostRefused(url, "IP address hosts are not allowed")
    if not policy.may_connect(origin):
        raise HostRefused(url, f"host {origin.host}:{origin.port} is not on the allow list")
    return origin


class HostRefused(Exception):
    """The hub client was about to contact a host outside the allow list (S8)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to contact {_redacted(url)}: {reason}")
        self.reason = reason


def _split_endpoint(hf_endpoint: str) -> SplitResult:
    parts = urlsplit(hf_endpoint.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError(f"HF_ENDPOINT must be an http(s) URL without credentials: {hf_endpoint!r}")
    return parts


def _host(parts: SplitResult) -> str:
    return (parts.hostname or "").rstrip(".").lower()


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def _shown(value: object) -> str:
    # Echo at most a short, printable excerpt of what the user sent.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _redacted(url: str) -> str:
    # Never echo paths or query strings: signed CDN URLs carry credentials there.
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed url>"
    return f"{parts.scheme}://{parts.hostname}{port}"
