"""Pure functions that build the URLs the SDK calls."""

from __future__ import annotations

from urllib.parse import quote

_OPERATION_SUFFIXES = ("/chat/completions", "/completions", "/embeddings")


def inference_base(url: str) -> str:
    """The ``.../v1`` base of an OpenAI-compatible API, from whatever form the user gave.

    Accepts a server or endpoint base (``https://sentiment-api.regolo.ai``,
    ``http://host:8000/endpoints/sentiment-api``), a ``/v1`` base, or a full
    operation URL such as the seed's ``.../custom-model/v1/chat/completions/``.
    """
    base = url.strip().rstrip("/")
    for suffix in _OPERATION_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base if base.endswith("/v1") else f"{base}/v1"


def endpoint_base(base_url: str, endpoint: str) -> str:
    """The per-endpoint base URL the gateway serves: ``{base}/endpoints/{name}``."""
    return f"{base_url.rstrip('/')}/endpoints/{segment(endpoint)}"


def segment(value: str) -> str:
    """One path segment, escaped so that ids like ``../x`` cannot change the route."""
    escaped = quote(str(value), safe="")
    # quote() keeps dots, and "." or ".." would be resolved as a path step.
    return escaped.replace(".", "%2E") if escaped in {".", ".."} else escaped
