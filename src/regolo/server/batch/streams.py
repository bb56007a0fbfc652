"""Batch lines go upstream streamed, and their result is the body a non-streamed request
would have got, rebuilt here from the chunks.

Why stream: a batch request that online traffic preempts is cancelled by closing its
connection. llama.cpp notices a closed connection of a streamed request at the next
token; a non-streamed one keeps its slot busy until the whole answer is generated.

Lines that ask for ``logprobs`` go non-streamed: rebuilding those exactly is not worth
the code, and they are rare in batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STREAMED_URLS = frozenset({"/v1/chat/completions", "/v1/completions"})
DONE = "[DONE]"


def streamable(url: str, body: dict[str, Any]) -> bool:
    return url.rstrip("/") in STREAMED_URLS and not body.get("logprobs")


def streamed_request(body: dict[str, Any]) -> dict[str, Any]:
    options = body.get("stream_options")
    options = dict(options) if isinstance(options, dict) else {}
    return {**body, "stream": True, "stream_options": {**options, "include_usage": True}}


def event_data(line: str) -> str | None:
    """The payload of one SSE line: ``data: ...`` (or llama.cpp's ``error: ...``)."""
    for prefix in ("data:", "error:"):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


@dataclass
class _Choice:
    index: int
    role: str | None = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        if isinstance(choice.get("text"), str):
            self.text.append(choice["text"])
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return
        self.role = delta.get("role") or self.role
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        if isinstance(delta.get("reasoning_content"), str):
            self.reasoning.append(delta["reasoning_content"])
        for call in delta.get("tool_calls") or []:
            self._add_tool_call(call)

    def _add_tool_call(self, call: dict[str, Any]) -> None:
        merged = self.tool_calls.setdefault(
            int(call.get("index", len(self.tool_calls))),
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        merged["id"] = call.get("id") or merged["id"]
        merged["type"] = call.get("type") or merged["type"]
        function = call.get("function") or {}
        merged["function"]["name"] += function.get("name") or ""
        merged["function"]["arguments"] += function.get("arguments") or ""

    def as_chat(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role or "assistant"}
        message["content"] = "".join(self.content) if self.content or not self.tool_calls else None
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {
            "index": self.index,
            "message": message,
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }

    def as_completion(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": "".join(self.text),
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }


@dataclass
class Assembler:
    """Folds ``chat.completion.chunk`` or ``text_completion`` chunks into one body."""

    chat: bool
    head: dict[str, Any] = field(default_factory=dict)
    choices: dict[int, _Choice] = field(default_factory=dict)
    tail: dict[str, Any] = field(default_factory=dict)  # usage, llama.cpp's timings
    error: dict[str, Any] | None = None
    done: bool = False

    def add(self, data: str) -> None:
        if data == DONE:
            self.done = True
            return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("a chunk is not a JSON object")
        if "error" in chunk or "choices" not in chunk:
            error = chunk.get("error", chunk)
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return
        for key in ("id", "created", "model", "system_fingerprint"):
            if key in chunk:
                self.head.setdefault(key, chunk[key])
        for key in ("usage", "timings"):
            if chunk.get(key):
                self.tail[key] = chunk[key]
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index", 0))
            self.choices.setdefault(index, _Choice(index)).add(choice)

    def body(self) -> dict[str, Any]:
        choices = [self.choices[i] for i in sorted(self.choices)]
        return {
            **self.head,
            "object": "chat.completion" if self.chat else "text_completion",
            "choices": [c.as_chat() if self.chat else c.as_completion() for c in choices],
            **self.tail,
        }
