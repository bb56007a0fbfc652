"""Runtimes: how a replica serves a model (``llamacpp``, ``transformers``, ``vllm``,
``external``). Pick one with ``regolo.server.runtimes.registry.choose_runtime``."""

from __future__ import annotations

from collections.abc import Mapping

from regolo.server.errors import ValidationFailed
from regolo.server.specs import ReplicaSpec


def spec_options(spec: ReplicaSpec, allowed: Mapping[str, type]) -> dict[str, int | float | str]:
    """The spec's runtime options, converted to ``allowed``'s types.

    An unknown option or a value of the wrong type is refused: a silently ignored option
    is a deployment that does not do what its owner asked.
    """
    parsed: dict[str, int | float | str] = {}
    for key, raw in spec.options:
        kind = allowed.get(key)
        if kind is None:
            known = ", ".join(sorted(allowed)) or "none"
            raise ValidationFailed(
                f"unknown option {key!r} for runtime {spec.runtime!r} (known: {known})",
                param=f"options.{key}",
            )
        try:
            parsed[key] = kind(raw)
        except ValueError:
            raise ValidationFailed(
                f"option {key!r} must be {kind.__name__}, got {raw!r}", param=f"options.{key}"
            ) from None
    return parsed


def int_option(
    options: Mapping[str, int | float | str], key: str, default: int, *, minimum: int = 1
) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or value < minimum:
        raise ValidationFailed(
            f"option {key!r} must be an integer >= {minimum}", param=f"options.{key}"
        )
    return value
