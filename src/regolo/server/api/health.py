"""``/healthz`` (process up) and ``/readyz`` (store reachable): the only public routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from regolo.server.api.deps import platform
from regolo.server.errors import RegoloError

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str


@router.get("/healthz", response_model=HealthOut)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "the store is unreachable"}},
)
def readyz(request: Request) -> JSONResponse:
    try:
        with platform(request).db.read() as session:
            session.execute(text("SELECT 1"))
    except RegoloError:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})
