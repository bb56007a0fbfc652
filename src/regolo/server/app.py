"""``create_app(settings)``: the control API, the gateway and the dashboard in one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from regolo.server.api import accounts, health, keys
from regolo.server.api.errors import install_error_handlers
from regolo.server.middleware import ApiMiddleware
from regolo.server.platform import Platform
from regolo.server.settings import Settings


def create_api(platform: Platform) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        platform.close()

    api = FastAPI(title="Regolo Endpoints", version="0.1.0", lifespan=lifespan, docs_url="/docs")
    api.state.platform = platform
    install_error_handlers(api)
    for router in (health.router, keys.router, accounts.router):
        api.include_router(router)
    return api


class PlatformApp:
    """Top-level ASGI dispatcher: gateway paths skip the control API's middleware stack."""

    def __init__(self, platform: Platform, api: FastAPI, gateway: Any | None = None) -> None:
        self.platform = platform
        self.api = api
        self.gateway = gateway
        self._api_stack = ApiMiddleware(
            api,
            authenticator=platform.authenticator,
            max_body_bytes=platform.settings.max_body_bytes,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.gateway is not None and scope["type"] == "http" and self.gateway.handles(scope):
            await self.gateway(scope, receive, send)
            return
        await self._api_stack(scope, receive, send)


def create_app(settings: Settings, platform: Platform | None = None) -> PlatformApp:
    platform = platform or Platform.open(settings)
    return PlatformApp(platform, create_api(platform))
