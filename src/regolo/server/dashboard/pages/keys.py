"""API keys: create (the secret is shown once), list with prefixes and scopes, revoke."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page, redirect
from regolo.server.dashboard.pages.forms import text

SCOPE_CHOICES = ("inference:*", "admin")


def scopes_of(form: dict[str, Any]) -> list[str]:
    """The chosen preset, or one endpoint's ``inference:<name>`` scope."""
    choice = text(form, "scope") or "inference:*"
    endpoint = text(form, "endpoint")
    if choice == "endpoint" and endpoint:
        return [f"inference:{endpoint}"]
    return [choice]


async def _keys_page(
    current: Page,
    *,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    keys = await current.get("/v1/keys")
    endpoints = await current.get("/v1/endpoints")
    response = current.render(
        "keys.html",
        status_code=status_code,
        nav="keys",
        keys=keys.json()["data"] if keys.ok else [],
        endpoints=endpoints.json()["data"] if endpoints.ok else [],
        created=created,
        error=error or (None if keys.ok else keys.error_message()),
    )
    return response


@page
async def key_list(current: Page) -> Response:
    return await _keys_page(current)


@page
async def create_key(current: Page) -> Response:
    form = await current.form()
    body = {"name": text(form, "name") or "dashboard key", "scopes": scopes_of(form)}
    result = await current.call("POST", "/v1/keys", json_body=body)
    if not result.ok:
        return await _keys_page(
            current, error=result.error_message(), status_code=result.status_code
        )
    # Rendered, not redirected: the secret exists only in this response (never cached).
    return await _keys_page(current, created=result.json(), status_code=201)


@page
async def revoke_key(current: Page, key_id: str) -> Response:
    await current.form()
    result = await current.call("DELETE", f"/v1/keys/{key_id}")
    if not result.ok:
        return await _keys_page(
            current, error=result.error_message(), status_code=result.status_code
        )
    return redirect("/ui/keys")


routes = [
    Route("/ui/keys", key_list, methods=["GET"]),
    Route("/ui/keys", create_key, methods=["POST"]),
    Route("/ui/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
]
