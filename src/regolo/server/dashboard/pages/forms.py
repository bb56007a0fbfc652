"""Pure parsing of submitted form fields into API request bodies."""

from __future__ import annotations

from typing import Any


class FormError(ValueError):
    """A field the user must fix; the message names it."""


def text(form: dict[str, Any], name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def integer(form: dict[str, Any], name: str) -> int | None:
    value = text(form, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise FormError(f"{name} must be a whole number") from exc


def number(form: dict[str, Any], name: str) -> float | None:
    value = text(form, name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise FormError(f"{name} must be a number") from exc


def checkbox(form: dict[str, Any], name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def drop_empty(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def endpoint_body(form: dict[str, Any], *, model: str, version: str) -> dict[str, Any]:
    """The ``POST /v1/endpoints`` body for the deploy form."""
    return drop_empty(
        {
            "name": text(form, "name"),
            "model": model,
            "version": version,
            "instance_type": text(form, "instance_type"),
            "replicas": integer(form, "replicas"),
            "min_replicas": integer(form, "min_replicas"),
            "max_replicas": integer(form, "max_replicas"),
            "target_utilization": number(form, "target_utilization"),
            "request_timeout_seconds": number(form, "request_timeout_seconds"),
            "enable_cache": checkbox(form, "enable_cache"),
            "enable_compression": checkbox(form, "enable_compression"),
            "cpu_request": text(form, "cpu_request"),
            "memory_request": text(form, "memory_request"),
            "cpu_limit": text(form, "cpu_limit"),
            "memory_limit": text(form, "memory_limit"),
        }
    )


def traffic_body(form: dict[str, Any]) -> dict[str, Any]:
    """``weight__<version>`` percentages -> ``{"version_traffic": {version: fraction}}``."""
    weights: dict[str, float] = {}
    for field, value in form.items():
        if field.startswith("weight__") and isinstance(value, str):
            percent = number({field: value}, field)
            weights[field.removeprefix("weight__")] = (percent or 0.0) / 100
    if not weights:
        raise FormError("give at least one version's weight")
    return {"version_traffic": weights}


def scaling_body(form: dict[str, Any]) -> dict[str, Any]:
    return drop_empty(
        {
            "replicas": integer(form, "replicas"),
            "min_replicas": integer(form, "min_replicas"),
            "max_replicas": integer(form, "max_replicas"),
            "target_utilization": number(form, "target_utilization"),
            "request_timeout_seconds": number(form, "request_timeout_seconds"),
        }
    )
