"""Endpoint calls of the control-plane API: create, inspect, change, roll out."""

from __future__ import annotations

import time
from typing import Any

from regolo._http import HTTPSession, list_data
from regolo._urls import segment
from regolo.errors import RegoloError
from regolo.types import Canary, Endpoint

_FAILED = "failed"


class EndpointsAPI:
    _http: HTTPSession

    def create_endpoint(
        self, name: str, model: str, version: str = "1.0", replicas: int = 1, **config: Any
    ) -> Endpoint:
        """Deploy ``model:version`` as a new endpoint; ``config`` takes any endpoint field.

        Example: client.create_endpoint("sentiment-api", "sentiment-classifier", replicas=2)
        """
        body = {"name": name, "model": model, "version": version, "replicas": replicas}
        body.update({key: value for key, value in config.items() if value is not None})
        return Endpoint.model_validate(self._http.request("POST", "/v1/endpoints", json=body))

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        """One endpoint by id or name.  Example: client.get_endpoint("sentiment-api").status"""
        return Endpoint.model_validate(self._http.request("GET", _path(endpoint_id)))

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint of the account.  Example: [e.name for e in client.list_endpoints()]"""
        body = self._http.request("GET", "/v1/endpoints")
        return [Endpoint.model_validate(item) for item in list_data(body)]

    def update_endpoint(self, endpoint_id: str, **changes: Any) -> Endpoint:
        """Change endpoint fields.  Example: client.update_endpoint("sentiment-api", replicas=10)"""
        body = self._http.request("PATCH", _path(endpoint_id), json=changes)
        return Endpoint.model_validate(body)

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Drain and delete an endpoint.  Example: client.delete_endpoint("sentiment-api")"""
        self._http.request("DELETE", _path(endpoint_id))

    def create_canary(
        self, endpoint_id: str, new_version: str, traffic_percentage: float, **opts: Any
    ) -> Canary:
        """Send ``traffic_percentage`` % of requests to ``new_version``.

        Example: client.create_canary("sentiment-api", new_version="1.1", traffic_percentage=5)
        """
        body = {"new_version": new_version, "traffic_percentage": traffic_percentage, **opts}
        # auto_promote=True: the platform steps the traffic up (``steps``, one per
        # ``step_interval_seconds``) and rolls back when ``rollback_on`` bounds break.
        route = "canary/auto" if opts.get("auto_promote") else "canary"
        if not opts.get("auto_promote"):
            body.pop("auto_promote", None)
        response = self._http.request("POST", f"{_path(endpoint_id)}/{route}", json=body)
        return Canary.model_validate(response)

    def update_endpoint_traffic(
        self, endpoint_id: str, version_traffic: dict[str, float]
    ) -> Endpoint:
        """Set the traffic weight of each version (A/B, blue-green).

        Example: client.update_endpoint_traffic("sentiment-api", {"1.0": 0.5, "1.1": 0.5})
        """
        body = {"version_traffic": version_traffic}
        response = self._http.request("PUT", f"{_path(endpoint_id)}/traffic", json=body)
        return Endpoint.model_validate(response)

    def rollback_endpoint(self, endpoint_id: str, to_version: str | None = None) -> Endpoint:
        """Send all traffic back to the last stable (or the given) version.

        Example: client.rollback_endpoint("sentiment-api")
        """
        body = {"to_version": to_version} if to_version else {}
        response = self._http.request("POST", f"{_path(endpoint_id)}/rollback", json=body)
        return Endpoint.model_validate(response)

    def promote_canary(self, endpoint_id: str) -> Endpoint:
        """Make the canary the stable version with all traffic.

        Example: client.promote_canary("sentiment-api")
        """
        response = self._http.request("POST", f"{_path(endpoint_id)}/promote")
        return Endpoint.model_validate(response)

    def wait_for_endpoint(
        self,
        endpoint_id: str,
        status: str = "ready",
        timeout: float = 600.0,
        poll_interval_seconds: float = 2.0,
    ) -> Endpoint:
        """Poll until the endpoint reaches ``status``; raise if it fails or time runs out.

        Example: client.wait_for_endpoint("sentiment-api", timeout=300).url
        """
        deadline = time.monotonic() + timeout
        while True:
            endpoint = self.get_endpoint(endpoint_id)
            if endpoint.status == status:
                return endpoint
            if endpoint.status == _FAILED:
                raise RegoloError(
                    f"endpoint {endpoint.name} failed: {endpoint.status_reason or 'no reason'}",
                    type="endpoint_failed",
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"endpoint {endpoint.name} is {endpoint.status!r}, not {status!r},"
                    f" after {timeout:g} s"
                )
            self._http.sleep(poll_interval_seconds)


def _path(endpoint_id: str) -> str:
    return f"/v1/endpoints/{segment(endpoint_id)}"
