"""Request dependencies: who is calling, and the platform services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from regolo.server.errors import PermissionDenied, Unauthenticated
from regolo.server.specs import Principal

if TYPE_CHECKING:
    from regolo.server.platform import Platform


def platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


def principal(request: Request) -> Principal:
    found = request.scope.get("state", {}).get("principal")
    if found is None:
        raise Unauthenticated()
    return found  # type: ignore[no-any-return]


def admin(request: Request) -> Principal:
    caller = principal(request)
    if not caller.is_admin:
        raise PermissionDenied("this key lacks the admin scope")
    return caller


def superadmin(request: Request) -> Principal:
    caller = admin(request)
    if not caller.is_superadmin:
        raise PermissionDenied("only the platform's superadmin may do this")
    return caller
