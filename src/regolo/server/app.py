"""``create_app(settings)``: the control API, the gateway and the dashboard in one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from regolo.server.api import accounts, endpoints, health, keys
from regolo.server.api.errors import install_error_handlers
from regolo.server.dashboard.app import Dashboard
from regolo.server.middleware import ApiMiddleware
from regolo.server.platform import Platform
from regolo.server.settings import Settings

ROUTERS = (health.router, keys.router, accounts.router, endpoints.router)


def create_api(platform: Platform, *, run_loops: bool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_loops:
            platform.start_loops()
        try:
            yield
        finally:
            await platform.shutdown()

    api = FastAPI(title="Regolo Endpoints", version="0.1.0", lifespan=lifespan)
    api.state.platform = platform
    install_error_handlers(api)
    if platform.settings.role in ("all", "api"):
        for router in (*ROUTERS, *_optional_routers()):
            api.include_router(router)
    else:  # gateway and controller processes answer only their health routes here
        api.include_router(health.router)
    return api


FEATURE_ROUTERS = ("library", "instances", "metrics", "billing", "files", "batches", "autoscaling")


def _optional_routers() -> list[Any]:
    """Routers of the feature modules that exist (``regolo.server.api.<name>.router``)."""
    import importlib

    found = []
    for name in FEATURE_ROUTERS:
        module_name = f"regolo.server.api.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not module_name.startswith(exc.name):
                raise
            continue
        found.append(module.router)
    return found


class PlatformApp:
    """Top-level ASGI dispatcher: gateway paths skip the control API's middleware stack."""

    def __init__(self, platform: Platform, api: FastAPI) -> None:
        self.platform = platform
        self.api = api
        # The gateway runs in the ``all`` and ``gateway`` roles only.
        self.gateway = platform.gateway if platform.settings.role in ("all", "gateway") else None
        self._api_stack = ApiMiddleware(
            api,
            authenticator=platform.authenticator,
            max_body_bytes=platform.settings.max_body_bytes,
            metrics_token=platform.settings.metrics_token,
            max_upload_bytes=platform.settings.batch_max_file_bytes,
        )
        # The dashboard authenticates with its own session cookie (browsers send no bearer
        # key) and reads everything back through this app, as any API client would.
        self.dashboard = (
            Dashboard(platform.settings, self) if platform.settings.role in ("all", "api") else None
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.gateway is not None and scope["type"] == "http" and self.gateway.handles(scope):
            await self.gateway(scope, receive, send)
            return
        if self.dashboard is not None and self.dashboard.handles(scope):
            await self.dashboard(scope, receive, send)
            return
        await self._api_stack(scope, receive, send)


def create_app(
    settings: Settings, platform: Platform | None = None, *, run_loops: bool = True
) -> PlatformApp:
    platform = platform or Platform.open(settings)
    return PlatformApp(platform, create_api(platform, run_loops=run_loops))
