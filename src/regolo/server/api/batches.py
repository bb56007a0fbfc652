"""``/v1/batches``: create, list, get, cancel. OpenAI Batch API shapes and statuses,
plus ``endpoint_id`` to run every line on one of the account's endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from regolo.server.api.deps import platform, principal
from regolo.server.api.files import visible_file
from regolo.server.api.idempotency import idempotency_key, run_once
from regolo.server.api.schemas import Strict
from regolo.server.batch.access import may_see
from regolo.server.batch.formats import SUPPORTED_URLS
from regolo.server.batch.jobs import request_cancel
from regolo.server.batch.status import BatchStatus, window_seconds
from regolo.server.batch.tables import BatchJob
from regolo.server.errors import InvalidRequest, NotFound
from regolo.server.specs import Principal
from regolo.server.store.ids import new_id
from regolo.server.store.tables import Endpoint

router = APIRouter(prefix="/v1/batches", tags=["batches"])
MAX_ID_CHARS = 64
_TIMES = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


class BatchCreate(Strict):
    input_file_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    endpoint: str = Field(default="/v1/chat/completions", max_length=64)
    completion_window: str = Field(default="24h", max_length=8)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    endpoint_id: str | None = Field(default=None, min_length=1, max_length=100)


def batch_out(row: BatchJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "object": "batch",
        "endpoint": row.url,
        "endpoint_id": row.endpoint_name,
        "errors": {"object": "list", "data": row.errors} if row.errors else None,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "metadata": row.metadata_,
    }
    for name in _TIMES:
        value = getattr(row, name)
        body[name] = int(value.timestamp()) if value is not None else None
    return body


@router.post("")
def create_batch(
    body: BatchCreate,
    request: Request,
    caller: Principal = Depends(principal),
    regolo: Any = Depends(platform),
) -> dict[str, Any]:
    url = body.endpoint.rstrip("/")
    if url not in SUPPORTED_URLS:
        raise InvalidRequest(
            f"endpoint must be one of {', '.join(SUPPORTED_URLS)}", param="endpoint"
        )
    seconds = window_seconds(body.completion_window)
    if seconds is None:
        raise InvalidRequest("completion_window must look like '24h'", param="completion_window")
    input_file = visible_file(regolo, caller, body.input_file_id)
    if input_file.purpose != "batch":
        raise InvalidRequest("the input file's purpose must be 'batch'", param="input_file_id")

    def create(session: Session) -> dict[str, Any]:
        endpoint_name = _endpoint_name(session, caller, body.endpoint_id)
        now = datetime.now(UTC)
        row = BatchJob(
            id=new_id("batch"),
            account_id=caller.account_id,
            key_id=caller.key_id,
            scopes=sorted(caller.scopes),
            endpoint_name=endpoint_name,
            url=url,
            completion_window=body.completion_window,
            input_file_id=input_file.id,
            status=BatchStatus.VALIDATING,
            metadata_=body.metadata,
            total=0,
            completed=0,
            failed=0,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
        )
        session.add(row)
        return batch_out(row)

    created = run_once(
        regolo.db,
        account_id=caller.account_id,
        key=idempotency_key(request),
        request=request,
        create=create,
    )
    _poke(regolo)
    return created


@router.get("")
def list_batches(
    limit: int = Query(default=20, ge=1, le=100),
    after: str | None = Query(default=None, max_length=MAX_ID_CHARS),
    caller: Principal = Depends(principal),
    regolo: Any = Depends(platform),
) -> dict[str, Any]:
    query = select(BatchJob).where(BatchJob.account_id == caller.account_id)
    with regolo.db.read() as session:
        if after is not None:
            anchor = session.get(BatchJob, after)
            if anchor is not None and anchor.account_id == caller.account_id:
                query = query.where(
                    or_(
                        BatchJob.created_at < anchor.created_at,
                        (BatchJob.created_at == anchor.created_at) & (BatchJob.id > anchor.id),
                    )
                )
        rows = list(session.scalars(query.order_by(BatchJob.created_at.desc(), BatchJob.id)))
    seen = [row for row in rows if _may_see(caller, row)]
    page = [batch_out(row) for row in seen[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(seen) > limit,
    }


@router.get("/{batch_id}")
def get_batch(
    batch_id: str, caller: Principal = Depends(principal), regolo: Any = Depends(platform)
) -> dict[str, Any]:
    with regolo.db.read() as session:
        return batch_out(_visible(session, caller, batch_id))


@router.post("/{batch_id}/cancel")
def cancel_batch(
    batch_id: str, caller: Principal = Depends(principal), regolo: Any = Depends(platform)
) -> dict[str, Any]:
    with regolo.db.write() as session:
        row = _visible(session, caller, batch_id)
        request_cancel(session, row, datetime.now(UTC))
        out = batch_out(row)
    _poke(regolo)
    return out


def _visible(session: Session, caller: Principal, batch_id: str) -> BatchJob:
    row = session.get(BatchJob, batch_id[:MAX_ID_CHARS])
    if row is None or not _may_see(caller, row):
        raise NotFound(f"No such batch: {batch_id[:80]!r}", param="batch_id")
    return row


def _may_see(caller: Principal, row: BatchJob) -> bool:
    return may_see(
        caller, account_id=row.account_id, key_id=row.key_id, endpoint_name=row.endpoint_name
    )


def _endpoint_name(session: Session, caller: Principal, endpoint_id: str | None) -> str | None:
    """The name of the endpoint the batch runs on; unknown and forbidden look alike (S5)."""
    if endpoint_id is None:
        return None
    endpoint = session.scalars(
        select(Endpoint).where(
            Endpoint.account_id == caller.account_id,
            Endpoint.deleted_at.is_(None),
            or_(Endpoint.id == endpoint_id, Endpoint.name == endpoint_id),
        )
    ).first()
    if endpoint is None or not caller.can_call(endpoint.name):
        raise NotFound(
            f"The endpoint {endpoint_id[:100]!r} does not exist or you do not have access to it",
            param="endpoint_id",
        )
    return endpoint.name


def _poke(regolo: Any) -> None:
    controller = getattr(regolo, "controller", None)
    if controller is not None:
        controller.poke()
