"""API key calls of the control-plane API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from regolo._http import HTTPSession, list_data
from regolo._urls import segment
from regolo.types import CreatedKey, Key

ALL_MODELS_SCOPE = "inference:*"


class KeysAPI:
    _http: HTTPSession

    def create_key(
        self,
        name: str,
        scopes: Sequence[str] = (ALL_MODELS_SCOPE,),
        expires_at: datetime | None = None,
        rate_limit_rpm: int | None = None,
        rate_limit_tpm: int | None = None,
    ) -> CreatedKey:
        """Mint a key; ``.key`` holds the secret, which is shown only this once.

        Example: client.create_key("ci", scopes=["inference:sentiment-api"]).key
        """
        body = {
            "name": name,
            "scopes": list(scopes),
            "expires_at": expires_at.isoformat() if expires_at else None,
            "rate_limit_rpm": rate_limit_rpm,
            "rate_limit_tpm": rate_limit_tpm,
        }
        body = {field: value for field, value in body.items() if value is not None}
        return CreatedKey.model_validate(self._http.request("POST", "/v1/keys", json=body))

    def list_keys(self) -> list[Key]:
        """Every key of the account, secrets excluded.  Example: client.list_keys()[0].prefix"""
        return [
            Key.model_validate(item) for item in list_data(self._http.request("GET", "/v1/keys"))
        ]

    def revoke_key(self, key_id: str) -> Key:
        """Revoke a key at once.  Example: client.revoke_key("key_123").revoked_at"""
        return Key.model_validate(self._http.request("DELETE", f"/v1/keys/{segment(key_id)}"))
