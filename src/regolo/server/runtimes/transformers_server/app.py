"""The ASGI app: OpenAI routes over the engines, behind a bearer-token check.

Handlers are thin: validate, build the prompt, hand the request to an engine, shape the
answer. Every error leaves as OpenAI-shaped JSON without internals.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from regolo.server.errors import (
    InvalidRequest,
    NotFound,
    RegoloError,
    Unavailable,
    ValidationFailed,
)
from regolo.server.runtimes.transformers_server import prompts, responses
from regolo.server.runtimes.transformers_server.auth import BearerAuth
from regolo.server.runtimes.transformers_server.encoding import EncodeRequest, EncodingEngine
from regolo.server.runtimes.transformers_server.events import (
    Event,
    EventSink,
    Failed,
    Finished,
    TextDelta,
)
from regolo.server.runtimes.transformers_server.generation import (
    GenerationEngine,
    GenerationRequest,
)
from regolo.server.runtimes.transformers_server.sampling import SamplingParams
from regolo.server.runtimes.transformers_server.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)
from regolo.server.runtimes.transformers_server.state import ServerState

log = logging.getLogger(__name__)
DEFAULT_MAX_TOKENS = 1024


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(BearerAuth, api_key=state.config.api_key)
    _add_error_handlers(app)
    _add_routes(app, state)
    return app


def _add_routes(app: FastAPI, state: ServerState) -> None:
    name = state.config.served_model_name

    @app.get("/health")
    async def health() -> dict[str, str]:
        if not state.ready:
            raise Unavailable("the model is loading", retry_after_seconds=2.0)
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        engine = state.generation or state.encoding
        return engine.stats.snapshot() if engine else {}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        length = state.loaded.context_length if state.loaded else 0
        return responses.model_list(model=name, created=state.created, context_length=length)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        if state.config.task == "text-classification":
            return await _classify(_encoding(state), name, body)
        engine = _generation(state)
        prompt_ids = prompts.chat_prompt_ids(_tokenizer(state), body.messages)
        return await _generate(engine, state, name, prompt_ids, body, chat=True)

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> Any:
        engine = _generation(state)
        text = body.prompt_text()
        if text is None:
            raise InvalidRequest("only one prompt per request is supported", param="prompt")
        prompt_ids = prompts.text_prompt_ids(_tokenizer(state), text)
        return await _generate(engine, state, name, prompt_ids, body, chat=False)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        engine = _encoding(state)
        if state.config.task != "feature-extraction":
            raise InvalidRequest("this model does not produce embeddings", param="model")
        encoded = await _encode(engine, body.texts())
        return responses.embeddings(
            model=name,
            vectors=encoded.vectors,
            encoding_format=body.encoding_format,
            prompt_tokens=encoded.prompt_tokens,
        )


def _generation(state: ServerState) -> GenerationEngine:
    if state.config.task != "text-generation" and state.ready:
        raise InvalidRequest("this model does not generate text", param="model")
    if state.generation is None or not state.ready:
        raise Unavailable("the model is loading", retry_after_seconds=2.0)
    return state.generation


def _encoding(state: ServerState) -> EncodingEngine:
    if state.encoding is None or not state.ready:
        if state.ready:
            raise InvalidRequest("this model only generates text", param="model")
        raise Unavailable("the model is loading", retry_after_seconds=2.0)
    return state.encoding


def _tokenizer(state: ServerState) -> Any:
    assert state.loaded is not None
    return state.loaded.tokenizer


def sampling_params(
    body: ChatCompletionRequest | CompletionRequest, prompt_tokens: int, context_length: int
) -> SamplingParams:
    """Validate the token budget against the context and fix the sampling parameters."""
    room = context_length - prompt_tokens
    if room < 1:
        raise InvalidRequest(
            f"the prompt has {prompt_tokens} tokens; the context holds {context_length}",
            param="messages" if isinstance(body, ChatCompletionRequest) else "prompt",
        )
    requested = body.requested_max_tokens()
    if requested is not None and requested > room:
        raise InvalidRequest(
            f"max_tokens is {requested}; at most {room} fit after the prompt", param="max_tokens"
        )
    return SamplingParams(
        max_tokens=requested or min(room, DEFAULT_MAX_TOKENS),
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        stop=body.stop_sequences(),
    )


async def _generate(
    engine: GenerationEngine,
    state: ServerState,
    name: str,
    prompt_ids: list[int],
    body: ChatCompletionRequest | CompletionRequest,
    *,
    chat: bool,
) -> Any:
    assert state.loaded is not None
    params = sampling_params(body, len(prompt_ids), state.loaded.context_length)
    request = GenerationRequest(prompt_ids, params, EventSink(asyncio.get_running_loop()))
    engine.submit(request)
    request_id = responses.new_id("chatcmpl" if chat else "cmpl")
    if body.stream:
        chunks = _stream(request, request_id, name, chat=chat, usage=body.include_usage())
        return StreamingResponse(chunks, media_type="text/event-stream")
    text, finished = await _collect(request)
    usage = responses.usage(finished.prompt_tokens, finished.completion_tokens)
    if chat:
        return responses.chat_completion(
            request_id=request_id,
            model=name,
            content=text,
            finish_reason=finished.finish_reason,
            usage_=usage,
        )
    return responses.completion(
        request_id=request_id,
        model=name,
        text=text,
        finish_reason=finished.finish_reason,
        usage_=usage,
    )


async def _collect(request: GenerationRequest) -> tuple[str, Finished]:
    parts: list[str] = []
    try:
        async for event in _events(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            elif isinstance(event, Finished):
                return "".join(parts), event
    finally:
        request.cancelled = True  # a no-op once finished; frees the slot if the client left
    raise RegoloError("generation ended without a result")


async def _events(request: GenerationRequest) -> AsyncIterator[Event]:
    while True:
        event = await request.sink.queue.get()
        if isinstance(event, Failed):
            raise RegoloError("generation failed")
        yield event
        if isinstance(event, Finished):
            return


async def _stream(
    request: GenerationRequest, request_id: str, name: str, *, chat: bool, usage: bool
) -> AsyncIterator[str]:
    def chunk(text: str | None, finish_reason: str | None = None) -> str:
        if chat:
            delta = {"role": "assistant", "content": ""} if text is None else {"content": text}
            return _sse(
                responses.chat_chunk(
                    request_id=request_id, model=name, delta=delta, finish_reason=finish_reason
                )
            )
        body = responses.completion(
            request_id=request_id,
            model=name,
            text=text or "",
            finish_reason=finish_reason,
            usage_=None,
        )
        return _sse(body)

    try:
        if chat:
            yield chunk(None)
        async for event in _events(request):
            if isinstance(event, TextDelta):
                yield chunk(event.text)
            elif isinstance(event, Finished):
                yield chunk("", event.finish_reason)
                if usage:
                    usage_ = responses.usage(event.prompt_tokens, event.completion_tokens)
                    object_ = "chat.completion.chunk" if chat else "text_completion"
                    yield _sse(
                        responses.usage_chunk(
                            request_id=request_id, model=name, object_=object_, usage_=usage_
                        )
                    )
                yield "data: [DONE]\n\n"
    except RegoloError as error:
        # Headers are gone; an error event without [DONE] tells the client the stream broke.
        yield _sse(error.body())
    finally:
        request.cancelled = True


async def _classify(engine: EncodingEngine, name: str, body: ChatCompletionRequest) -> Any:
    if body.stream:
        raise InvalidRequest("a classifier does not stream", param="stream")
    encoded = await _encode(engine, [prompts.classification_text(body.messages)])
    scores = dict(zip(engine.labels, encoded.vectors[0], strict=True))
    return responses.classification_completion(
        request_id=responses.new_id("chatcmpl"),
        model=name,
        scores=scores,
        prompt_tokens=encoded.prompt_tokens,
    )


async def _encode(engine: EncodingEngine, texts: list[str]) -> Any:
    request = EncodeRequest(texts)
    engine.submit(request)
    try:
        return await asyncio.wrap_future(request.result)
    except RegoloError:
        raise
    except Exception:
        log.exception("encoding failed")
        raise RegoloError("encoding failed") from None


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegoloError)
    async def regolo_error(_: Request, error: RegoloError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        failure = ValidationFailed(
            str(first.get("msg", "invalid request")), param=".".join(location) or None
        )
        return JSONResponse(failure.body(), status_code=failure.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        failure = (
            NotFound("no such route")
            if error.status_code == 404
            else RegoloError(str(error.detail) if error.status_code < 500 else "server error")
        )
        status = error.status_code if error.status_code != 404 else 404
        body = failure.body()
        if status == 405:
            body["error"]["type"] = "invalid_request_error"
        return JSONResponse(body, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        failure = RegoloError()
        return JSONResponse(failure.body(), status_code=failure.status_code)
