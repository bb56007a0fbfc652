"""The dashboard's ASGI app: ``/`` and ``/ui/...``, with its own cookie-session auth.

Browsers do not send bearer keys, so ``PlatformApp`` hands these paths to this app before
the API middleware. Everything except the login page and static files needs a session;
without one the answer is 401 (the login form for a browser navigation, OpenAI-shaped
JSON otherwise), so no page or fragment leaks (S1). Pages read and write only through
the public REST API (``public_api``) with the session's key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Router
from starlette.staticfiles import StaticFiles

from regolo.server.asgi import Scope, header, request_id_for, send_error
from regolo.server.dashboard.context import Page, make_environment, render_login
from regolo.server.dashboard.pages import (
    auth,
    batches,
    billing,
    endpoints,
    keys,
    library,
    playground,
)
from regolo.server.dashboard.public_api import PublicApi
from regolo.server.dashboard.security import wants_html, with_security_headers
from regolo.server.dashboard.session import COOKIE_NAME, SessionCodec, load_or_create_secret
from regolo.server.errors import InvalidRequest, PayloadTooLarge, RegoloError, Unauthenticated
from regolo.server.settings import Settings

STATIC = Path(__file__).parent / "static"
LOGIN_PATHS = frozenset({"/ui/login"})
LOGIN_BODY_BYTES = 16 * 1024
UPLOAD_BYTES = 500 * 1024 * 1024  # the batch API's own file cap decides below this


class Dashboard:
    def __init__(self, settings: Settings, public_app: Any) -> None:
        self.codec = SessionCodec(load_or_create_secret(settings.home))
        self.api = PublicApi(public_app)
        self.env = make_environment()
        self.max_body_bytes = settings.max_body_bytes
        secure = settings.base_url.startswith("https")
        self.public = Router(
            routes=[
                Mount("/ui/static", app=StaticFiles(directory=STATIC), name="static"),
                *auth.login_routes(self.codec, self.api, self.env, secure_cookies=secure),
            ]
        )
        self.pages = Router(
            routes=[
                *auth.routes,
                *library.routes,
                *endpoints.routes,
                *playground.routes,
                *keys.routes,
                *batches.routes,
                *billing.routes,
            ]
        )

    @staticmethod
    def handles(scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return scope.get("type") == "http" and (path in ("/", "/ui") or path.startswith("/ui/"))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = request_id_for(scope)
        send = with_security_headers(send, request_id)
        path = scope["path"]
        session = None
        if path not in LOGIN_PATHS and not path.startswith("/ui/static/"):
            session = self.codec.open(Request(scope).cookies.get(COOKIE_NAME))
            if session is None:  # 401 before anything else looks at the request (S1)
                await self._unauthenticated(scope, receive, send, request_id)
                return
        body_error = _body_error(scope, self.max_body_bytes)
        if body_error is not None:
            await send_error(send, body_error, request_id)
            return
        if session is None:
            await self.public(scope, receive, send)
            return
        scope.setdefault("state", {})["dashboard_page"] = Page(
            request=Request(scope, receive), session=session, api=self.api, env=self.env
        )
        await self.pages(scope, receive, send)

    async def _unauthenticated(
        self, scope: Scope, receive: Any, send: Any, request_id: str
    ) -> None:
        if wants_html(scope):
            response: HTMLResponse = render_login(
                self.env, secure=scope.get("scheme") == "https", error=None, status_code=401
            )
            await response(scope, receive, send)
            return
        await send_error(send, Unauthenticated("sign in to the dashboard first"), request_id)


def _body_error(scope: Scope, max_body_bytes: int) -> RegoloError | None:
    """Bodies need a declared length within the cap (batch uploads get the file cap)."""
    if scope["method"] not in ("POST", "PUT", "PATCH"):
        return None
    length = header(scope, b"content-length")
    if length is None or not length.isdigit():
        return InvalidRequest("send the body with a Content-Length")
    cap = UPLOAD_BYTES if scope["path"] == "/ui/batches" else max_body_bytes
    if scope["path"] in LOGIN_PATHS:
        cap = LOGIN_BODY_BYTES
    if int(length) > cap:
        return PayloadTooLarge(f"request body exceeds {cap} bytes")
    return None
