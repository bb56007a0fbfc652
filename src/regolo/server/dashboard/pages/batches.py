"""Batches: upload a JSONL file and start a batch, watch progress, download results."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page, redirect
from regolo.server.dashboard.pages.forms import text

ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")


async def _batches_page(
    current: Page, *, error: str | None = None, status_code: int = 200
) -> Response:
    batches = await current.get("/v1/batches", limit=100)
    endpoints = await current.get("/v1/endpoints")
    rows = batches.json()["data"] if batches.ok else []
    return current.render(
        "batches.html",
        status_code=status_code,
        nav="batches",
        available=batches.status_code != 404,
        batches=rows,
        endpoints=endpoints.json()["data"] if endpoints.ok else [],
        error=error,
        refresh=any(b["status"] in ACTIVE for b in rows),
    )


@page
async def batch_list(current: Page) -> Response:
    return await _batches_page(current)


@page
async def create_batch(current: Page) -> Response:
    form = await current.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _batches_page(current, error="Choose a JSONL file.", status_code=400)
    content = await upload.read()
    uploaded = await current.call(
        "POST",
        "/v1/files",
        files={"file": (upload.filename, content, "application/jsonl")},
        data={"purpose": "batch"},
    )
    if not uploaded.ok:
        return await _batches_page(
            current, error=uploaded.error_message(), status_code=uploaded.status_code
        )
    body = {"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"}
    endpoint = text(form, "endpoint_id")
    if endpoint:
        body["endpoint_id"] = endpoint
    created = await current.call("POST", "/v1/batches", json_body=body)
    if not created.ok:
        return await _batches_page(
            current, error=created.error_message(), status_code=created.status_code
        )
    return redirect("/ui/batches")


@page
async def cancel_batch(current: Page, batch_id: str) -> Response:
    await current.form()
    result = await current.call("POST", f"/v1/batches/{batch_id}/cancel")
    if not result.ok:
        return await _batches_page(
            current, error=result.error_message(), status_code=result.status_code
        )
    return redirect("/ui/batches")


@page
async def file_content(current: Page, file_id: str) -> Response:
    result = await current.get(f"/v1/files/{file_id}/content")
    if not result.ok:
        return current.api_error(result)
    return Response(
        result.body,
        media_type="application/jsonl",
        headers={"content-disposition": f'attachment; filename="{file_id}.jsonl"'},
    )


routes = [
    Route("/ui/batches", batch_list, methods=["GET"]),
    Route("/ui/batches", create_batch, methods=["POST"]),
    Route("/ui/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/ui/files/{file_id}/content", file_content, methods=["GET"]),
]
