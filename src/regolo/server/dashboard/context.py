"""What every dashboard handler gets: the request, its session, the API and rendering."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from regolo.server.dashboard.formatting import FILTERS
from regolo.server.dashboard.public_api import ApiResult, PublicApi
from regolo.server.dashboard.session import (
    COOKIE_NAME,
    LOGIN_CSRF_COOKIE,
    DashboardSession,
    tokens_match,
)
from regolo.server.errors import PermissionDenied

TEMPLATES = Path(__file__).parent / "templates"
# Names and ids the API accepts; anything else never reaches an API path.
PATH_PARAM = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def make_environment() -> Environment:
    # Autoescape everything: model names, chat text and API messages are shown as text.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    env.filters["url_part"] = lambda value: quote(str(value), safe="")
    return env


class SessionExpired(Exception):
    """The API refused the session's key (revoked, expired): the user must sign in again."""


@dataclass
class Page:
    request: Request
    session: DashboardSession
    api: PublicApi
    env: Environment

    async def call(self, method: str, path: str, **kwargs: Any) -> ApiResult:
        result = await self.api.request(method, path, self.session.api_key, **kwargs)
        if result.status_code == 401:
            raise SessionExpired
        return result

    async def get(self, path: str, **params: Any) -> ApiResult:
        return await self.call("GET", path, params=params or None)

    async def form(self) -> dict[str, Any]:
        """The submitted form, after checking its CSRF token (every POST handler starts here)."""
        form = await self.request.form()
        if not tokens_match(self.session.csrf_token, _text(form.get("csrf_token"))):
            raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page")
        return dict(form)

    def check_csrf_header(self) -> None:
        if not tokens_match(self.session.csrf_token, self.request.headers.get("x-csrf-token")):
            raise PermissionDenied("the CSRF token is missing or wrong; reload the page")

    def api_error(self, result: ApiResult) -> HTMLResponse:
        return self.render(
            "error.html", status_code=result.status_code, message=result.error_message()
        )

    def render(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            session=self.session, csrf_token=self.session.csrf_token, **values
        )
        return HTMLResponse(html, status_code=status_code)


def _safe_param(value: Any) -> bool:
    return bool(PATH_PARAM.fullmatch(str(value))) and value not in (".", "..")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def clear_session(response: Response) -> Response:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


def render_login(
    env: Environment, *, secure: bool, error: str | None, status_code: int
) -> HTMLResponse:
    """The login form with a fresh double-submit CSRF token (cookie + hidden field)."""
    token = secrets.token_urlsafe(32)
    html = env.get_template("login.html").render(session=None, login_csrf=token, error=error)
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    return response


def page(handler: Any) -> Any:
    """Wrap a handler ``(page, **path_params)`` with the dashboard's error handling."""

    async def endpoint(request: Request) -> Response:
        current: Page = request.state.dashboard_page
        if not all(_safe_param(value) for value in request.path_params.values()):
            return current.render("error.html", status_code=404, message="No such page.")
        try:
            response: Response = await handler(current, **request.path_params)
            return response
        except SessionExpired:
            expired = render_login(
                current.env,
                secure=request.url.scheme == "https",
                error="Your key no longer works; sign in again.",
                status_code=401,
            )
            return clear_session(expired)
        except PermissionDenied as error:
            return current.render("error.html", status_code=403, message=error.message)

    endpoint.__name__ = handler.__name__
    return endpoint
