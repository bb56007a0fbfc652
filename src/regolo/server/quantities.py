"""Kubernetes-style resource quantities: ``"2"``, ``"500m"`` cores; ``"4Gi"``, ``"512M"`` bytes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CPU = re.compile(r"(\d+(?:\.\d+)?)(m?)")
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?")
_MEMORY_UNITS = {
    None: 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
MAX_CPU_CORES = 1024
MAX_MEMORY_BYTES = 2**50


def parse_cpu(quantity: str) -> float:
    """Cores from ``"2"``, ``"0.5"`` or ``"500m"``; ValueError if malformed or absurd."""
    match = _CPU.fullmatch(quantity.strip())
    if not match:
        raise ValueError(f"{quantity!r} is not a CPU quantity such as '2' or '500m'")
    cores = Decimal(match.group(1)) / (1000 if match.group(2) else 1)
    if not 0 < cores <= MAX_CPU_CORES:
        raise ValueError(f"{quantity!r} is out of range")
    return float(cores)


def parse_memory(quantity: str) -> int:
    """Bytes from ``"4Gi"``, ``"512Mi"``, ``"1G"`` or a plain byte count."""
    match = _MEMORY.fullmatch(quantity.strip())
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity such as '4Gi' or '512Mi'")
    try:
        size = Decimal(match.group(1)) * _MEMORY_UNITS[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise ValueError(f"{quantity!r} is not a number") from exc
    if not 1 <= size <= MAX_MEMORY_BYTES:  # less than a byte rounds to nothing
        raise ValueError(f"{quantity!r} is out of range")
    return int(size)
