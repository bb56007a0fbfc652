"""Batch calls of the control-plane API (OpenAI Batch API compatible) and their objects.

A batch is a JSONL file of requests run on an endpoint's spare capacity; results come
back as one line per ``custom_id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict

from regolo._http import HTTPSession, _decode, list_data
from regolo._urls import segment
from regolo.errors import BadRequestError

FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
CHAT_URL = "/v1/chat/completions"


class _BatchObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class BatchRequestCounts(_BatchObject):
    total: int = 0
    completed: int = 0
    failed: int = 0


class Batch(_BatchObject):
    """A batch job: ``status`` is one of validating, in_progress, finalizing, completed,
    failed, expired, cancelling, cancelled."""

    id: str
    status: str
    endpoint: str = CHAT_URL
    endpoint_id: str | None = None
    input_file_id: str
    completion_window: str = "24h"
    output_file_id: str | None = None
    error_file_id: str | None = None
    request_counts: BatchRequestCounts = BatchRequestCounts()
    errors: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    created_at: int
    expires_at: int | None = None
    completed_at: int | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


class BatchFile(_BatchObject):
    id: str
    bytes: int
    filename: str
    purpose: str
    created_at: int


class BatchResult(_BatchObject):
    """One line of a batch's results: ``response`` on success, ``error`` otherwise."""

    id: str
    custom_id: str
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None and 200 <= int(self.response.get("status_code", 0)) < 300


Requests = str | Path | Iterable[Mapping[str, Any]]


class BatchesAPI:
    _http: HTTPSession

    def upload_batch_file(self, data: bytes | BinaryIO, filename: str = "batch.jsonl") -> BatchFile:
        """Upload a JSONL file for a batch.  Example: client.upload_batch_file(b'{...}\\n').id"""
        request = self._http._client.build_request(
            "POST",
            "/v1/files",
            files={"file": (filename, data, "application/jsonl")},
            data={"purpose": "batch"},
        )
        return BatchFile.model_validate(_decode(self._http._send(request, stream=False)))

    def submit_batch(
        self,
        requests: Requests,
        endpoint_id: str | None = None,
        *,
        url: str = CHAT_URL,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> Batch:
        """Run many requests on an endpoint's spare capacity.

        ``requests`` is a JSONL path, a list of request dicts (any of the accepted line
        formats), or the id of an uploaded file (``file-...``).

        Example: regolo.submit_batch(requests="batch.jsonl", endpoint_id="sentiment-api")
        """
        file_id = self._input_file_id(requests)
        body: dict[str, Any] = {
            "input_file_id": file_id,
            "endpoint": url,
            "completion_window": completion_window,
        }
        if endpoint_id is not None:
            body["endpoint_id"] = endpoint_id
        if metadata:
            body["metadata"] = metadata
        return Batch.model_validate(self._http.request("POST", "/v1/batches", json=body))

    def get_batch(self, batch_id: str) -> Batch:
        """A batch's status and counts.  Example: client.get_batch("batch_123").request_counts"""
        return Batch.model_validate(self._http.request("GET", _path(batch_id)))

    def list_batches(self, limit: int = 20) -> list[Batch]:
        """The newest batches first.  Example: [b.status for b in client.list_batches()]"""
        body = self._http.request("GET", "/v1/batches", params={"limit": limit})
        return [Batch.model_validate(item) for item in list_data(body)]

    def cancel_batch(self, batch_id: str) -> Batch:
        """Stop a batch; finished lines are kept.  Example: client.cancel_batch("batch_123")"""
        return Batch.model_validate(self._http.request("POST", f"{_path(batch_id)}/cancel"))

    def wait_for_batch(
        self, batch_id: str, timeout_seconds: float = 86400.0, poll_seconds: float = 1.0
    ) -> Batch:
        """Poll until the batch ends.  Example: client.wait_for_batch(batch.id).status"""
        deadline = time.monotonic() + timeout_seconds
        batch = self.get_batch(batch_id)
        while not batch.done and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            batch = self.get_batch(batch_id)
        return batch

    def get_batch_results(self, batch_id: str, *, errors: bool = True) -> list[BatchResult]:
        """Every result line, output first then errors, ordered by line.

        Example: {r.custom_id: r.response for r in client.get_batch_results("batch_123")}
        """
        batch = self.get_batch(batch_id)
        file_ids = [batch.output_file_id, batch.error_file_id if errors else None]
        results: list[BatchResult] = []
        for file_id in filter(None, file_ids):
            results.extend(BatchResult.model_validate_json(line) for line in self._lines(file_id))
        return results

    def _lines(self, file_id: str) -> list[bytes]:
        request = self._http._client.build_request("GET", f"/v1/files/{segment(file_id)}/content")
        response = self._http._send(request, stream=False)
        return [line for line in response.content.splitlines() if line.strip()]

    def _input_file_id(self, requests: Requests) -> str:
        if (
            isinstance(requests, str)
            and requests.startswith("file-")
            and not Path(requests).exists()
        ):
            return requests
        if isinstance(requests, str | Path):
            path = Path(requests)
            with path.open("rb") as handle:
                return self.upload_batch_file(handle, filename=path.name).id
        lines = [json.dumps(dict(item), ensure_ascii=False) for item in requests]
        if not lines:
            raise BadRequestError("a batch needs at least one request")
        return self.upload_batch_file(("\n".join(lines) + "\n").encode()).id


def _path(batch_id: str) -> str:
    return f"/v1/batches/{segment(batch_id)}"
