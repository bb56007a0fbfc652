"""Model library: list (size, params, format, download progress), add by URL, detail, deploy."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from regolo.server.dashboard.context import Page, page, redirect
from regolo.server.dashboard.pages.forms import FormError, endpoint_body, text

DOWNLOADING = ("pending", "downloading", "queued")


def _busy(models: list[dict[str, Any]]) -> bool:
    return any(v["status"] in DOWNLOADING for m in models for v in m["versions"])


async def _library(current: Page, *, error: str | None = None, status_code: int = 200) -> Response:
    result = await current.get("/v1/library/models")
    models = result.json()["data"] if result.ok else []
    return current.render(
        "library.html",
        status_code=status_code,
        nav="models",
        models=models,
        error=error or (None if result.ok else result.error_message()),
        refresh=_busy(models),
    )


@page
async def library(current: Page) -> Response:
    return await _library(current)


@page
async def add_model(current: Page) -> Response:
    form = await current.form()
    body = {"url": text(form, "url"), "name": text(form, "name"), "version": text(form, "version")}
    if body["url"] is None:
        return await _library(current, error="Enter the model's URL.", status_code=400)
    result = await current.call(
        "POST", "/v1/library/models", json_body={k: v for k, v in body.items() if v}
    )
    if not result.ok:
        return await _library(current, error=result.error_message(), status_code=result.status_code)
    return redirect(f"/ui/models/{result.json()['model']}")


@page
async def model_detail(current: Page, name: str) -> Response:
    result = await current.get(f"/v1/library/models/{name}")
    if not result.ok:
        return current.api_error(result)
    model = result.json()
    return current.render("model.html", nav="models", model=model, refresh=_busy([model]))


@page
async def delete_model(current: Page, name: str) -> Response:
    await current.form()
    result = await current.call("DELETE", f"/v1/library/models/{name}")
    if not result.ok:
        return current.api_error(result)
    return redirect("/ui/models")


async def _deploy_page(
    current: Page, name: str, version: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    model = await current.get(f"/v1/library/models/{name}/versions/{version}")
    if not model.ok:
        return current.api_error(model)
    fits = await current.get(f"/v1/library/models/{name}/versions/{version}/instances")
    options = fits.json()["data"] if fits.ok else []
    return current.render(
        "deploy.html",
        status_code=status_code,
        nav="models",
        version=model.json(),
        options=options,
        chosen=next((o["instance_type"] for o in options if o["fits"]), None),
        error=error or (None if fits.ok else fits.error_message()),
    )


@page
async def deploy_form(current: Page, name: str, version: str) -> Response:
    return await _deploy_page(current, name, version)


@page
async def deploy(current: Page, name: str, version: str) -> Response:
    form = await current.form()
    try:
        body = endpoint_body(form, model=name, version=version)
    except FormError as error:
        return await _deploy_page(current, name, version, error=str(error), status_code=400)
    if "name" not in body:
        return await _deploy_page(
            current, name, version, error="Name the endpoint.", status_code=400
        )
    result = await current.call("POST", "/v1/endpoints", json_body=body)
    if not result.ok:
        return await _deploy_page(
            current, name, version, error=result.error_message(), status_code=result.status_code
        )
    return redirect(f"/ui/endpoints/{result.json()['name']}?created=1")


routes = [
    Route("/ui/models", library, methods=["GET"]),
    Route("/ui/models", add_model, methods=["POST"]),
    Route("/ui/models/{name}", model_detail, methods=["GET"]),
    Route("/ui/models/{name}/delete", delete_model, methods=["POST"]),
    Route("/ui/models/{name}/versions/{version}/deploy", deploy_form, methods=["GET"]),
    Route("/ui/models/{name}/versions/{version}/deploy", deploy, methods=["POST"]),
]
