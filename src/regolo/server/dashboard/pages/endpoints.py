"""Endpoints: list, detail (health, charts, usage snippets), traffic, scaling, delete."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page, redirect
from regolo.server.dashboard.pages.forms import FormError, scaling_body, text, traffic_body
from regolo.server.dashboard.snippets import curl_snippet, python_snippet

TIME_RANGES = ("15m", "1h", "24h", "7d", "30d")
SETTLED = ("ready", "failed", "paused")


@page
async def endpoint_list(current: Page) -> Response:
    result = await current.get("/v1/endpoints")
    rows = result.json()["data"] if result.ok else []
    return current.render(
        "endpoints.html",
        nav="endpoints",
        endpoints=rows,
        error=None if result.ok else result.error_message(),
        refresh=any(e["status"] not in SETTLED for e in rows),
    )


async def _detail(
    current: Page, name: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    result = await current.get(f"/v1/endpoints/{name}")
    if not result.ok:
        return current.api_error(result)
    endpoint = result.json()
    versions = await current.get(f"/v1/library/models/{endpoint['model']}")
    policy = await current.get(f"/v1/endpoints/{name}/autoscaling")
    events = await current.get(f"/v1/endpoints/{name}/autoscaling/events", limit=10)
    model_versions = [v["version"] for v in versions.json()["versions"]] if versions.ok else []
    return current.render(
        "endpoint.html",
        status_code=status_code,
        nav="endpoints",
        endpoint=endpoint,
        model_versions=model_versions,
        created=current.request.query_params.get("created") == "1",
        done=current.request.query_params.get("done"),
        error=error,
        # The autoscaling API may be absent on this server: the section then says so.
        autoscaling=policy.json() if policy.ok else None,
        scaling_events=events.json()["data"] if events.ok else [],
        time_ranges=TIME_RANGES,
        curl=curl_snippet(
            endpoint_url=endpoint["url"],
            model=endpoint["name"],
            key_prefix=current.session.key_prefix,
        ),
        python=python_snippet(
            endpoint_url=endpoint["url"],
            model=endpoint["name"],
            key_prefix=current.session.key_prefix,
        ),
    )


@page
async def endpoint_detail(current: Page, name: str) -> Response:
    return await _detail(current, name)


async def _act(current: Page, name: str, method: str, path: str, body: Any, done: str) -> Response:
    result = await current.call(method, path, json_body=body)
    if not result.ok:
        return await _detail(
            current, name, error=result.error_message(), status_code=result.status_code
        )
    return redirect(f"/ui/endpoints/{name}?done={done}")


@page
async def set_traffic(current: Page, name: str) -> Response:
    form = await current.form()
    try:
        body = traffic_body(form)
    except FormError as error:
        return await _detail(current, name, error=str(error), status_code=400)
    return await _act(current, name, "PUT", f"/v1/endpoints/{name}/traffic", body, "traffic")


@page
async def start_canary(current: Page, name: str) -> Response:
    form = await current.form()
    try:
        percent = float(text(form, "traffic_percentage") or "")
    except ValueError:
        return await _detail(
            current, name, error="traffic_percentage must be a number", status_code=400
        )
    body = {"new_version": text(form, "new_version"), "traffic_percentage": percent}
    return await _act(current, name, "POST", f"/v1/endpoints/{name}/canary", body, "canary")


@page
async def rollback(current: Page, name: str) -> Response:
    await current.form()
    return await _act(current, name, "POST", f"/v1/endpoints/{name}/rollback", None, "rollback")


@page
async def promote(current: Page, name: str) -> Response:
    await current.form()
    return await _act(current, name, "POST", f"/v1/endpoints/{name}/promote", None, "promote")


@page
async def scale(current: Page, name: str) -> Response:
    form = await current.form()
    try:
        body = scaling_body(form)
    except FormError as error:
        return await _detail(current, name, error=str(error), status_code=400)
    return await _act(current, name, "PATCH", f"/v1/endpoints/{name}", body, "scaling")


@page
async def delete(current: Page, name: str) -> Response:
    await current.form()
    result = await current.call("DELETE", f"/v1/endpoints/{name}")
    if not result.ok:
        return await _detail(
            current, name, error=result.error_message(), status_code=result.status_code
        )
    return redirect("/ui/endpoints")


async def _json(current: Page, path: str, **params: Any) -> Response:
    result = await current.get(path, **params)
    return JSONResponse(result.json(), status_code=result.status_code)


@page
async def health_json(current: Page, name: str) -> Response:
    return await _json(current, f"/v1/endpoints/{name}/health")


@page
async def metrics_json(current: Page, name: str) -> Response:
    time_range = current.request.query_params.get("time_range", "1h")
    return await _json(current, f"/v1/endpoints/{name}/metrics", time_range=time_range)


routes = [
    Route("/ui/endpoints", endpoint_list, methods=["GET"]),
    Route("/ui/endpoints/{name}", endpoint_detail, methods=["GET"]),
    Route("/ui/endpoints/{name}/traffic", set_traffic, methods=["POST"]),
    Route("/ui/endpoints/{name}/canary", start_canary, methods=["POST"]),
    Route("/ui/endpoints/{name}/rollback", rollback, methods=["POST"]),
    Route("/ui/endpoints/{name}/promote", promote, methods=["POST"]),
    Route("/ui/endpoints/{name}/scaling", scale, methods=["POST"]),
    Route("/ui/endpoints/{name}/delete", delete, methods=["POST"]),
    Route("/ui/endpoints/{name}/health.json", health_json, methods=["GET"]),
    Route("/ui/endpoints/{name}/metrics.json", metrics_json, methods=["GET"]),
]
