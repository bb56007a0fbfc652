"""Rebuilding a non-streamed body from a streamed answer's chunks."""

from __future__ import annotations

import json
from typing import Any

from regolo.server.batch.streams import Assembler, event_data, streamable, streamed_request


def chunk(**fields: Any) -> str:
    return json.dumps({"id": "c1", "created": 7, "model": "m", **fields})


def test_chat_chunks_become_one_chat_completion_with_usage() -> None:
    assembler = Assembler(chat=True)
    for data in (
        chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": None}}]),
        chunk(choices=[{"index": 0, "delta": {"content": "Hel"}}]),
        chunk(choices=[{"index": 0, "delta": {"content": "lo"}, "finish_reason": None}]),
        chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "length"}]),
        chunk(choices=[], usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
        "[DONE]",
    ):
        assembler.add(data)
    assert assembler.done and assembler.error is None
    assert assembler.body() == {
        "id": "c1",
        "created": 7,
        "model": "m",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def test_tool_call_fragments_are_joined() -> None:
    assembler = Assembler(chat=True)
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get"}}
    assembler.add(chunk(choices=[{"index": 0, "delta": {"tool_calls": [call]}}]))
    for part in ('{"city":', '"Rome"}'):
        fragment = {"index": 0, "function": {"arguments": part}}
        assembler.add(chunk(choices=[{"index": 0, "delta": {"tool_calls": [fragment]}}]))
    assembler.add(chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    (choice,) = assembler.body()["choices"]
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get", "arguments": '{"city":"Rome"}'},
        }
    ]


def test_completion_chunks_become_a_text_completion() -> None:
    assembler = Assembler(chat=False)
    assembler.add(chunk(choices=[{"index": 0, "text": "a"}]))
    assembler.add(chunk(choices=[{"index": 0, "text": "b", "finish_reason": "stop"}]))
    body = assembler.body()
    assert body["object"] == "text_completion"
    (choice,) = body["choices"]
    assert choice == {"index": 0, "text": "ab", "logprobs": None, "finish_reason": "stop"}


def test_an_error_event_is_kept() -> None:
    assembler = Assembler(chat=True)
    assembler.add(event_data('error: {"code": 500, "message": "boom"}') or "")
    assert assembler.error == {"code": 500, "message": "boom"}


def test_which_lines_stream() -> None:
    assert streamable("/v1/chat/completions", {"messages": []})
    assert streamable("/v1/completions/", {"prompt": "x"})
    assert not streamable("/v1/embeddings", {"input": "x"})
    assert not streamable("/v1/chat/completions", {"messages": [], "logprobs": True})
    body = streamed_request({"stream_options": {"x": 1}})
    assert body["stream"] is True
    assert body["stream_options"] == {"x": 1, "include_usage": True}
