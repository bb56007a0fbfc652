"""Parsing the three line formats; every error names its line (R16)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regolo.server.batch.formats import parse_lines
from regolo.server.batch.limits import BatchLimits

URL = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


def lines(*items: object) -> list[bytes]:
    return [
        item if isinstance(item, bytes) else json.dumps(item).encode() + b"\n" for item in items
    ]


def test_the_three_formats_parse_to_the_same_request() -> None:
    result = parse_lines(
        lines(
            {
                "custom_id": "a",
                "method": "POST",
                "url": URL,
                "body": {"model": "m", "messages": MESSAGES},
            },
            {"custom_id": "b", "params": {"model": "m", "messages": MESSAGES}},
            {"model": "m", "messages": MESSAGES},
            {"custom_id": "d", "model": "m", "messages": MESSAGES},
        ),
        URL,
        BatchLimits(),
    )
    assert result.errors == []
    assert [line.custom_id for line in result.lines] == ["a", "b", "request-3", "d"]
    assert all(line.body == {"model": "m", "messages": MESSAGES} for line in result.lines)


def test_blank_lines_are_skipped_but_keep_the_numbering() -> None:
    result = parse_lines(
        [b"\n", b"   \n", *lines({"model": "m", "messages": MESSAGES})], URL, BatchLimits()
    )
    assert [(line.line_no, line.custom_id) for line in result.lines] == [(3, "request-3")]


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (b"{nope", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        ({"method": "POST", "url": URL, "body": {"messages": MESSAGES}}, "missing_custom_id"),
        ({"custom_id": 7, "params": {"messages": MESSAGES}}, "invalid_custom_id"),
        ({"custom_id": "", "params": {"messages": MESSAGES}}, "invalid_custom_id"),
        ({"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {}}, "invalid_url"),
        (
            {"custom_id": "x", "method": "GET", "url": URL, "body": {"messages": MESSAGES}},
            "invalid_method",
        ),
        ({"custom_id": "x", "method": "POST", "url": URL, "body": "text"}, "invalid_body"),
        ({"custom_id": "x", "params": {"messages": "hi"}}, "invalid_body"),
        ({"custom_id": "x", "params": {"messages": MESSAGES, "stream": True}}, "invalid_body"),
        ({"custom_id": "x", "params": {"messages": MESSAGES}, "extra": 1}, "unknown_field"),
        ({"hello": "world"}, "unknown_format"),
    ],
)
def test_each_bad_line_is_named(item: object, code: str) -> None:
    good = {"custom_id": "ok", "params": {"messages": MESSAGES}}
    result = parse_lines(lines(good, item), URL, BatchLimits())
    assert [(e.line, e.code) for e in result.errors] == [(2, code)]
    assert result.errors[0].message.startswith("line 2: ")


def test_duplicate_custom_id_names_both_lines() -> None:
    item = {"custom_id": "same", "params": {"messages": MESSAGES}}
    result = parse_lines(lines(item, item), URL, BatchLimits())
    (error,) = result.errors
    assert (error.line, error.code) == (2, "duplicate_custom_id")
    assert "repeats line 1" in error.message


def test_caps_on_lines_and_line_size() -> None:
    item = {"model": "m", "messages": MESSAGES}
    at_cap = parse_lines(lines(item, item, item), URL, BatchLimits(max_lines=3))
    assert at_cap.errors == [] and len(at_cap.lines) == 3
    over = parse_lines(lines(item, item, item, item), URL, BatchLimits(max_lines=3))
    assert [(e.line, e.code) for e in over.errors] == [(4, "too_many_requests")]
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 200}]}
    too_big = parse_lines(lines(item, big), URL, BatchLimits(max_line_bytes=100))
    assert [(e.line, e.code) for e in too_big.errors] == [(2, "line_too_large")]


def test_an_empty_file_is_an_error() -> None:
    assert [e.code for e in parse_lines([b"\n"], URL, BatchLimits()).errors] == ["empty_file"]


def test_errors_stop_at_the_reporting_cap() -> None:
    result = parse_lines([b"{bad\n"] * 50, URL, BatchLimits(max_validation_errors=5))
    assert len(result.errors) == 5


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_with_a_line_number(raw: bytes) -> None:
    result = parse_lines([raw], URL, BatchLimits())
    assert all(e.line in (1, None) for e in result.errors)
    assert len(result.lines) + len(result.errors) >= 1 or not raw.strip()
