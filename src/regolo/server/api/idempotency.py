"""``Idempotency-Key``: a retried create returns the original response.

The record is written in the same transaction as the object it describes, so after a
crash either both exist or neither does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from regolo.server.errors import InvalidRequest
from regolo.server.store.database import Database
from regolo.server.store.tables import IdempotencyRecord

MAX_KEY_LENGTH = 200


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidRequest("Idempotency-Key must be 1-200 characters", param="Idempotency-Key")
    return key


def run_once(
    db: Database,
    *,
    account_id: str,
    key: str | None,
    request: Request,
    create: Callable[[Session], dict[str, Any]],
    stored_body: Callable[[dict[str, Any]], dict[str, Any]] = lambda body: body,
) -> dict[str, Any]:
    """Run ``create`` in a write transaction unless ``key`` was seen; return the body."""
    with db.write() as session:
        if key is not None:
            seen = session.get(IdempotencyRecord, (account_id, key))
            if seen is not None:
                if seen.path != request.url.path or seen.method != request.method:
                    raise InvalidRequest(
                        "Idempotency-Key was already used for another request",
                        param="Idempotency-Key",
                    )
                return json.loads(seen.response_body)  # type: ignore[no-any-return]
        body = create(session)
        if key is not None:
            session.add(
                IdempotencyRecord(
                    account_id=account_id,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    status_code=201,
                    response_body=json.dumps(stored_body(body), default=str),
                )
            )
        return body
