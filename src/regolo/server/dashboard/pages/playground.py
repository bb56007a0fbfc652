"""The chat playground's one fragment: stream a chat completion from the endpoint.

The browser posts the conversation here (CSRF header, session cookie); the request goes
to the gateway in-process with the session's key and the SSE bytes pass straight back.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page

MAX_MESSAGES = 50
MAX_CHARS = 20_000
MAX_TOKENS = 512
ROLES = ("system", "user", "assistant")


def chat_body(payload: Any, endpoint: str) -> dict[str, Any] | None:
    """The gateway request for a playground submission, or None when it is malformed."""
    if not isinstance(payload, dict):
        return None
    messages = payload.get("messages")
    if not isinstance(messages, list) or not 0 < len(messages) <= MAX_MESSAGES:
        return None
    clean = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return None
        content = message.get("content")
        if not isinstance(content, str) or len(content) > MAX_CHARS:
            return None
        clean.append({"role": message["role"], "content": content})
    max_tokens = payload.get("max_tokens", 64)
    if not isinstance(max_tokens, int) or not 0 < max_tokens <= MAX_TOKENS:
        return None
    return {"model": endpoint, "messages": clean, "max_tokens": max_tokens, "stream": True}


@page
async def chat(current: Page, name: str) -> Response:
    current.check_csrf_header()
    try:
        payload = await current.request.json()
    except ValueError:
        payload = None
    body = chat_body(payload, name)
    if body is None:
        return JSONResponse({"error": {"message": "malformed playground request"}}, status_code=400)
    path = f"/endpoints/{name}/v1/chat/completions"
    status, chunks = await current.api.stream("POST", path, current.session.api_key, body)
    media_type = "text/event-stream" if status == 200 else "application/json"
    return StreamingResponse(chunks, status_code=status, media_type=media_type)


routes = [Route("/ui/endpoints/{name}/chat", chat, methods=["POST"])]
