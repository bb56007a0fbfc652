"""Output and error files, built only from recorded lines so a rebuild is byte-identical.

Every ``custom_id`` appears exactly once across the two files: successful answers in
the output file; failed answers, failures to reach the model and lines left over by
expiry or cancellation in the error file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from regolo.server.batch.status import LineState

_LEFT_OVER = {
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class LineRecord:
    line_no: int
    custom_id: str
    state: str
    request_id: str | None
    status_code: int | None
    response_body: str | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class ResultFiles:
    output: bytes
    errors: bytes


def request_line_id(batch_id: str, line_no: int) -> str:
    return f"batch_req_{batch_id.removeprefix('batch_')}_{line_no}"


def build_result_files(batch_id: str, outcome: str, lines: Iterable[LineRecord]) -> ResultFiles:
    """Both files for ``lines`` in line order; ``outcome`` names what left lines unfinished."""
    output: list[bytes] = []
    errors: list[bytes] = []
    for line in sorted(lines, key=lambda item: item.line_no):
        item = _result_item(batch_id, outcome, line)
        is_success = (
            line.state == LineState.DONE
            and line.status_code is not None
            and 200 <= line.status_code < 300
        )
        (output if is_success else errors).append(_dumps(item) + b"\n")
    return ResultFiles(output=b"".join(output), errors=b"".join(errors))


def _result_item(batch_id: str, outcome: str, line: LineRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": request_line_id(batch_id, line.line_no),
        "custom_id": line.custom_id,
    }
    if line.state != LineState.DONE:
        code, message = _LEFT_OVER.get(
            outcome, ("batch_incomplete", "This request was not executed.")
        )
        item.update(response=None, error={"code": code, "message": message})
    elif line.status_code is None:
        item.update(response=None, error={"code": line.error_code, "message": line.error_message})
    else:
        response = {
            "status_code": line.status_code,
            "request_id": line.request_id,
            "body": _body(line.response_body),
        }
        item.update(response=response, error=None)
    return item


def _body(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dumps(item: dict[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()
