"""Sign in with an API key (admin scope), sign out."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, clear_session, page, redirect, render_login
from regolo.server.dashboard.public_api import PublicApi
from regolo.server.dashboard.session import (
    COOKIE_NAME,
    LOGIN_CSRF_COOKIE,
    SESSION_SECONDS,
    SessionCodec,
    new_session,
    tokens_match,
)

MAX_KEY_CHARS = 512


def login_routes(
    codec: SessionCodec, api: PublicApi, env: Environment, *, secure_cookies: bool
) -> list[Route]:
    async def login_form(request: Request) -> Response:
        return render_login(env, secure=secure_cookies, error=None, status_code=200)

    async def login(request: Request) -> Response:
        form = await request.form()
        given = form.get("csrf_token")
        expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not expected or not isinstance(given, str) or not tokens_match(expected, given):
            return render_login(
                env, secure=secure_cookies, error="The form expired; try again.", status_code=403
            )
        key = form.get("api_key")
        key = key.strip() if isinstance(key, str) else ""
        error, account_name = await _check_key(api, key)
        if error is not None:
            return render_login(env, secure=secure_cookies, error=error, status_code=401)
        response = redirect("/ui/models")
        response.set_cookie(
            COOKIE_NAME,
            codec.seal(new_session(key, account_name=account_name)),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            secure=secure_cookies,
            samesite="strict",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
        return response

    return [
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
    ]


async def _check_key(api: PublicApi, key: str) -> tuple[str | None, str]:
    if not key or len(key) > MAX_KEY_CHARS:
        return "Enter an API key.", ""
    result = await api.get("/v1/accounts/me", key)
    if result.status_code == 401:
        return "That key is not valid (wrong, expired or revoked).", ""
    if result.status_code == 403:
        return "The dashboard needs a key with the admin scope.", ""
    if not result.ok:
        return result.error_message(), ""
    return None, str(result.json()["name"])


@page
async def home(current: Page) -> Response:
    return redirect("/ui/models")


@page
async def logout(current: Page) -> Response:
    await current.form()
    return clear_session(redirect("/ui/login"))


def _home_routes() -> list[Any]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/ui", home, methods=["GET"]),
        Route("/ui/", home, methods=["GET"]),
        Route("/ui/logout", logout, methods=["POST"]),
    ]


routes = _home_routes()
