"""OpenAI-shaped response bodies (pure functions of what the engine produced)."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    *, request_id: str, model: str, content: str, finish_reason: str, usage_: dict[str, int]
) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
    return _envelope(request_id, "chat.completion", model) | {
        "choices": [choice],
        "usage": usage_,
    }


def classification_completion(
    *, request_id: str, model: str, scores: dict[str, float], prompt_tokens: int
) -> dict[str, Any]:
    """A chat completion whose content is the top label; all scores ride along."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    body = chat_completion(
        request_id=request_id,
        model=model,
        content=ranked[0][0],
        finish_reason="stop",
        usage_=usage(prompt_tokens, 0),
    )
    body["classification"] = [{"label": label, "score": score} for label, score in ranked]
    return body


def chat_chunk(
    *, request_id: str, model: str, delta: dict[str, str], finish_reason: str | None = None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
    return _envelope(request_id, "chat.completion.chunk", model) | {"choices": [choice]}


def completion(
    *, request_id: str, model: str, text: str, finish_reason: str | None, usage_: dict | None
) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
    body = _envelope(request_id, "text_completion", model) | {"choices": [choice]}
    return body | ({"usage": usage_} if usage_ is not None else {})


def usage_chunk(*, request_id: str, model: str, object_: str, usage_: dict) -> dict[str, Any]:
    return _envelope(request_id, object_, model) | {"choices": [], "usage": usage_}


def embeddings(
    *, model: str, vectors: list[list[float]], encoding_format: str, prompt_tokens: int
) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def model_list(*, model: str, created: int, context_length: int) -> dict[str, Any]:
    entry = {
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "regolo",
        "max_model_len": context_length,
    }
    return {"object": "list", "data": [entry]}


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "float":
        return vector
    # OpenAI's base64 format: little-endian float32 bytes.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _envelope(request_id: str, object_: str, model: str) -> dict[str, Any]:
    return {"id": request_id, "object": object_, "created": int(time.time()), "model": model}
