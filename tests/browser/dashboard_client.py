"""A signed-in dashboard client over plain HTTP (no browser), for the security tests."""

from __future__ import annotations

import re

import httpx

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def login(base_url: str, api_key: str) -> tuple[httpx.Client, str]:
    """A client holding a session cookie, and that session's CSRF token."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60)
    form = client.get("/ui/login")
    token = CSRF_FIELD.search(form.text)
    assert token, form.text
    response = client.post("/ui/login", data={"csrf_token": token.group(1), "api_key": api_key})
    assert response.status_code == 303, response.text
    page = client.get("/ui/models")
    meta = CSRF_META.search(page.text)
    assert meta, page.text
    return client, meta.group(1)
