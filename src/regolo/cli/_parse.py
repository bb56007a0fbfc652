"""Pure parsers for CLI arguments that typer cannot type on its own."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30d`` -> 30 days; units s, m, h, d, w."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 90m, 12h, 30d or 4w")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_traffic(pairs: list[str]) -> dict[str, float]:
    """``["1.0=0.9", "1.1=0.1"]`` -> ``{"1.0": 0.9, "1.1": 0.1}``."""
    traffic: dict[str, float] = {}
    for pair in pairs:
        version, sep, weight = pair.partition("=")
        try:
            if not sep or not version:
                raise ValueError(pair)
            traffic[version] = float(weight)
        except ValueError:
            raise typer.BadParameter(f"{pair!r} is not VERSION=WEIGHT, e.g. 1.1=0.5") from None
    return traffic
