"""Who may see a batch or a file: the account's admins, the key that made it, and keys
that may call its endpoint. Everything else looks like it does not exist (404)."""

from __future__ import annotations

from regolo.server.specs import Principal


def may_see(
    principal: Principal, *, account_id: str, key_id: str, endpoint_name: str | None
) -> bool:
    if principal.account_id != account_id:
        return False
    if principal.is_admin or principal.key_id == key_id:
        return True
    if endpoint_name is None:
        return "inference:*" in principal.scopes
    return principal.can_call(endpoint_name)


def scopes_may_call(scopes: list[str] | frozenset[str], endpoint_name: str) -> bool:
    found = set(scopes)
    return "admin" in found or "inference:*" in found or f"inference:{endpoint_name}" in found
