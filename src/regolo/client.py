"""``RegoloClient``: inference through the gateway, plus the control-plane calls."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from regolo._autoscaling import AutoscalingAPI
from regolo._batches import BatchesAPI
from regolo._billing import BillingAPI
from regolo._config import resolve_config
from regolo._endpoints import EndpointsAPI
from regolo._http import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, HTTPSession
from regolo._keys import KeysAPI
from regolo._library import LibraryAPI
from regolo._metrics import MetricsAPI
from regolo._sse import DONE
from regolo._urls import endpoint_base, inference_base
from regolo.errors import APIConnectionError, ServerError, error_from_event
from regolo.types import ChatCompletion, Completion, EmbeddingList

Message = dict[str, Any]


class RegoloClient(
    EndpointsAPI, KeysAPI, LibraryAPI, MetricsAPI, BillingAPI, BatchesAPI, AutoscalingAPI
):
    """A client for one server (``base_url``) and, optionally, one endpoint (``endpoint_url``).

    ``api_key`` and ``base_url`` default to ``REGOLO_API_KEY`` and ``REGOLO_BASE_URL``.
    ``alternative_url`` is the official regolo client's name for ``base_url``. With
    ``endpoint_url`` (``https://sentiment-api.regolo.ai`` or
    ``http://host:8000/endpoints/sentiment-api``) inference goes to that endpoint and
    ``model`` may be left out. ``transport`` lets tests plug in ``httpx.MockTransport``.

    Example:
        client = regolo.RegoloClient(api_key="KEY", endpoint_url="https://sentiment-api.regolo.ai")
        reply = client.static_chat_completions(messages=[{"role": "user", "content": "Hi"}])
        print(reply.choices[0].message.content)
    """

    def __init__(
        self,
        api_key: str | None = None,
        endpoint_url: str | None = None,
        *,
        base_url: str | None = None,
        alternative_url: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = resolve_config(api_key, base_url or alternative_url)
        self.api_key = config.api_key
        self.base_url = config.base_url
        self.endpoint_url = endpoint_url
        self._inference_base = inference_base(endpoint_url or self.base_url)
        self._http = HTTPSession(
            base_url=self.base_url,
            api_key=config.api_key,
            timeout=timeout,
            max_retries=max_retries,
            transport=transport,
        )

    def for_endpoint(self, endpoint: str) -> RegoloClient:
        """A client with the same key and server whose inference goes to one endpoint.

        ``endpoint`` is a name, or a URL such as ``https://sentiment-api.regolo.ai``.
        Example: client.for_endpoint("sentiment-api").static_chat_completions(messages)
        """
        is_url = "://" in endpoint
        clone = RegoloClient(
            self.api_key,
            endpoint if is_url else endpoint_base(self.base_url, endpoint),
            base_url=self.base_url,
            timeout=self._http.timeout,
            max_retries=self._http.max_retries,
            transport=self._http.transport,
        )
        clone._http.sleep = self._http.sleep
        return clone

    def static_chat_completions(
        self, messages: Sequence[Message], model: str | None = None, **params: Any
    ) -> ChatCompletion:
        """One chat completion; extra ``params`` (temperature, max_tokens, ...) pass through.

        Example: client.static_chat_completions(messages, model="m").choices[0].message.content
        """
        body = _body(messages=list(messages), model=model, **params)
        response = self._http.request(
            "POST", self._url("chat/completions"), json=body, idempotent=False
        )
        return ChatCompletion.model_validate(response)

    def chat_stream(
        self, messages: Sequence[Message], model: str | None = None, **params: Any
    ) -> Iterator[str]:
        """Yield the reply's text as it is generated; raises if the stream breaks off.

        Example: for text in client.chat_stream(messages): print(text, end="")
        """
        body = _body(messages=list(messages), model=model, stream=True, **params)
        for chunk in self._events(self._url("chat/completions"), body):
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield content

    def completions(
        self, prompt: str | list[str], model: str | None = None, **params: Any
    ) -> Completion:
        """A plain text completion.

        Example: client.completions("Once upon", model="m").choices[0].text
        """
        body = _body(prompt=prompt, model=model, **params)
        response = self._http.request("POST", self._url("completions"), json=body, idempotent=False)
        return Completion.model_validate(response)

    def embeddings(
        self, input: str | list[str], model: str | None = None, **params: Any
    ) -> EmbeddingList:
        """Embedding vectors.

        Example: client.embeddings(["a", "b"], model="e").data[0].embedding
        """
        body = _body(input=input, model=model, **params)
        response = self._http.request("POST", self._url("embeddings"), json=body, idempotent=False)
        return EmbeddingList.model_validate(response)

    def close(self) -> None:
        """Close the connection pool.  Example: with RegoloClient() as client: ..."""
        self._http.close()

    def __enter__(self) -> RegoloClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _url(self, operation: str) -> str:
        return f"{self._inference_base}/{operation}"

    def _events(self, url: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON chunks of a stream; a stream without ``[DONE]`` did not finish."""
        for data in self._http.stream(url, json=body):
            if data == DONE:
                return
            chunk = _parse_chunk(data)
            if isinstance(chunk, dict) and "error" in chunk:
                raise error_from_event(chunk)
            yield chunk
        raise APIConnectionError("the stream ended before the server finished the reply")


def _body(model: str | None, **fields: Any) -> dict[str, Any]:
    # Without a model the gateway routes by the endpoint in the URL.
    return fields if model is None else {"model": model, **fields}


def _parse_chunk(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ServerError("the stream carried an event that is not JSON") from exc
