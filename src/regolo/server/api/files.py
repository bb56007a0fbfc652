"""``/v1/files``: upload batch input (multipart), list, get, delete, download content.

OpenAI-compatible shapes, so the ``openai`` client's ``files.*`` calls work unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from regolo.server.api.deps import platform, principal
from regolo.server.batch.access import may_see
from regolo.server.batch.files import CHUNK_BYTES, FileStore, is_file_id, new_file_id
from regolo.server.batch.limits import limits_from
from regolo.server.batch.tables import BatchFile
from regolo.server.errors import InvalidRequest, NotFound
from regolo.server.specs import Principal

router = APIRouter(prefix="/v1/files", tags=["files"])
PURPOSES = ("batch",)
MAX_FILENAME_CHARS = 255


def file_store(regolo: Any) -> FileStore:
    limits = limits_from(regolo.settings)
    return FileStore(regolo.settings.files_dir, max_file_bytes=limits.max_file_bytes)


def file_out(row: BatchFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "file",
        "bytes": row.bytes,
        "created_at": int(row.created_at.timestamp()),
        "filename": row.filename,
        "purpose": row.purpose,
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def visible_file(regolo: Any, caller: Principal, file_id: str) -> BatchFile:
    """The file if ``caller`` may see it; otherwise 404, whether or not it exists (S5, S6)."""
    if not is_file_id(file_id):
        raise NotFound(f"No such file: {file_id[:80]!r}", param="file_id")
    with regolo.db.read() as session:
        row = session.get(BatchFile, file_id)
    if row is None or not may_see(
        caller, account_id=row.account_id, key_id=row.key_id, endpoint_name=row.endpoint_name
    ):
        raise NotFound(f"No such file: {file_id!r}", param="file_id")
    return row


@router.post("")
async def upload_file(
    file: UploadFile = File(...),
    purpose: str = Form(...),
    caller: Principal = Depends(principal),
    regolo: Any = Depends(platform),
) -> dict[str, Any]:
    if purpose not in PURPOSES:
        raise InvalidRequest("purpose must be 'batch'", param="purpose")
    file_id = new_file_id()
    size = await file_store(regolo).save_stream(file_id, _chunks(file))
    row = BatchFile(
        id=file_id,
        account_id=caller.account_id,
        key_id=caller.key_id,
        purpose=purpose,
        filename=(file.filename or "upload.jsonl")[:MAX_FILENAME_CHARS],
        bytes=size,
        created_at=datetime.now(UTC),
    )
    try:
        with regolo.db.write() as session:
            session.add(row)
    except Exception:
        file_store(regolo).delete(file_id)
        raise
    return file_out(row)


@router.get("")
def list_files(
    purpose: str | None = Query(default=None, max_length=32),
    limit: int = Query(default=100, ge=1, le=10_000),
    caller: Principal = Depends(principal),
    regolo: Any = Depends(platform),
) -> dict[str, Any]:
    query = select(BatchFile).where(BatchFile.account_id == caller.account_id)
    if purpose is not None:
        query = query.where(BatchFile.purpose == purpose)
    with regolo.db.read() as session:
        rows = list(session.scalars(query.order_by(BatchFile.created_at.desc(), BatchFile.id)))
    seen = [
        row
        for row in rows
        if may_see(
            caller, account_id=row.account_id, key_id=row.key_id, endpoint_name=row.endpoint_name
        )
    ]
    page = seen[:limit]
    return {"object": "list", "data": [file_out(r) for r in page], "has_more": len(seen) > limit}


@router.get("/{file_id}")
def get_file(
    file_id: str, caller: Principal = Depends(principal), regolo: Any = Depends(platform)
) -> dict[str, Any]:
    return file_out(visible_file(regolo, caller, file_id))


@router.delete("/{file_id}")
def delete_file(
    file_id: str, caller: Principal = Depends(principal), regolo: Any = Depends(platform)
) -> dict[str, Any]:
    row = visible_file(regolo, caller, file_id)
    with regolo.db.write() as session:
        found = session.get(BatchFile, row.id)
        if found is not None:
            session.delete(found)
    file_store(regolo).delete(row.id)
    return {"id": row.id, "object": "file", "deleted": True}


@router.get("/{file_id}/content")
def file_content(
    file_id: str, caller: Principal = Depends(principal), regolo: Any = Depends(platform)
) -> StreamingResponse:
    row = visible_file(regolo, caller, file_id)
    chunks = file_store(regolo).read_chunks(row.id)
    first = next(chunks, b"")  # a missing file is a 404 before any byte is sent
    return StreamingResponse(_prepend(first, chunks), media_type="application/jsonl")


def _prepend(first: bytes, rest: Any) -> Any:
    yield first
    yield from rest


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk
