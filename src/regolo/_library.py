"""Model library and instance catalog calls of the control-plane API."""

from __future__ import annotations

from typing import Any

from regolo._http import HTTPSession, list_data
from regolo._urls import segment
from regolo.errors import NotFoundError
from regolo.types import InstanceFit, InstanceType, Model, ModelVersion


class LibraryAPI:
    _http: HTTPSession

    def add_model(
        self, url: str, name: str | None = None, version: str | None = None, **opts: Any
    ) -> ModelVersion:
        """Add a Hugging Face model (or a new version of one); it downloads in the background.

        Example: client.add_model("https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct").status
        """
        body = {"url": url, "name": name, "version": version, **opts}
        body = {field: value for field, value in body.items() if value is not None}
        response = self._http.request("POST", "/v1/library/models", json=body)
        return ModelVersion.model_validate(response)

    def list_models(self) -> list[Model]:
        """Every model in the library.  Example: [m.name for m in client.list_models()]"""
        body = self._http.request("GET", "/v1/library/models")
        return [Model.model_validate(item) for item in list_data(body)]

    def get_model(self, name: str) -> Model:
        """One library model with its versions.  Example: client.get_model("qwen").versions"""
        return Model.model_validate(self._http.request("GET", _path(name)))

    def get_model_version(self, name: str, version: str | None = None) -> ModelVersion:
        """One version of a model, the newest when ``version`` is omitted.

        Example: client.get_model_version("qwen", "1.0").progress.bytes_done
        """
        model = self.get_model(name)
        return pick_version(model, version)

    def delete_model(self, name: str, version: str | None = None) -> None:
        """Delete a model, or only one of its versions.  Example: client.delete_model("qwen")"""
        params = {"version": version} if version else None
        self._http.request("DELETE", _path(name), params=params)

    def list_model_instances(self, name: str, version: str | None = None) -> list[InstanceFit]:
        """Which instance types fit a model version, with prices.

        Example: [f.instance_type for f in client.list_model_instances("qwen") if f.fits]
        """
        chosen = pick_version(self.get_model(name), version).version if version is None else version
        path = f"{_path(name)}/versions/{segment(chosen)}/instances"
        return [
            InstanceFit.model_validate(item) for item in list_data(self._http.request("GET", path))
        ]

    def list_instances(self) -> list[InstanceType]:
        """The instance type catalog.

        Example: [(i.id, i.price_per_hour) for i in client.list_instances()]
        """
        body = self._http.request("GET", "/v1/instances")
        return [InstanceType.model_validate(item) for item in list_data(body)]


def pick_version(model: Model, version: str | None) -> ModelVersion:
    """The named version, or the newest one (the last the server lists) when ``None``."""
    if version is None and model.versions:
        return model.versions[-1]
    for candidate in model.versions:
        if candidate.version == version:
            return candidate
    raise NotFoundError(f"model {model.name} has no version {version or '(none)'}", status_code=404)


def _path(name: str) -> str:
    return f"/v1/library/models/{segment(name)}"
