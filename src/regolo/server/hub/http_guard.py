"""The one place where huggingface_hub's HTTP client is configured (RELIABILITY S8).

huggingface_hub sends every request through one shared ``httpx2.Client`` made by a
factory that can be replaced (``set_client_factory``). Its own client follows redirects
anywhere: HEAD on ``/resolve`` follows only hub-internal redirects, but the file GET goes
to the ``Location`` the hub returned (a signed CDN URL) and then follows any further
redirect. We install a client whose request hook runs before each connection, redirects
included, and refuses every origin except:

- the configured ``HF_ENDPOINT`` (exact scheme, host and port; http allowed only if the
  operator configured an http mirror),
- ``huggingface.co`` / ``www.huggingface.co`` over https,
- the CDN hosts on an explicit allow list (setting; default ``safety.DEFAULT_CDN_HOSTS``),
  over https on port 443: the hosts the hub's resolve route redirects large files to.

Xet storage: ``hf_xet`` downloads in native code through its own connections, which this
hook cannot see. ``install`` therefore turns Xet off in huggingface_hub (the same switch
as ``HF_HUB_DISABLE_XET=1``) and the response hook drops the ``X-Xet-Hash`` header, so
files are fetched over plain HTTPS through this guarded client (the hub still serves Xet
files through the ``cas-bridge.xethub.hf.co`` redirect).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx2
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils import _http as hf_http

from regolo.server.hub.safety import HostPolicy, check_connect_url

_lock = threading.Lock()
_installed: HostPolicy | None = None


def install(policy: HostPolicy) -> None:
    """Make huggingface_hub use a client guarded by ``policy`` (idempotent)."""
    global _installed
    with _lock:
        if _installed == policy:
            return
        hf_constants.HF_HUB_DISABLE_XET = True
        hf_http.set_client_factory(client_factory(policy))
        _installed = policy


def client_factory(policy: HostPolicy) -> Callable[[], httpx2.Client]:
    def guard(request: httpx2.Request) -> None:
        check_connect_url(str(request.url), policy)

    def factory() -> httpx2.Client:
        return httpx2.Client(
            # The guard runs first so that a refused request is never even logged as sent.
            event_hooks={
                "request": [guard, hf_http.hf_request_event_hook],
                "response": [_drop_xet_headers],
            },
            follow_redirects=True,
            timeout=None,
        )

    return factory


def _drop_xet_headers(response: httpx2.Response) -> None:
    for name in (
        hf_constants.HUGGINGFACE_HEADER_X_XET_HASH,
        hf_constants.HUGGINGFACE_HEADER_X_XET_REFRESH_ROUTE,
    ):
        if name in response.headers:
            del response.headers[name]
