"""Read tensor names, dtypes and shapes from safetensors headers, never the weights.

A safetensors file starts with a little-endian uint64 ``N`` and ``N`` bytes of JSON:
``{"name": {"dtype": "F16", "shape": [..], "data_offsets": [b, e]}, "__metadata__": {..}}``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the format's own recommended cap

DTYPE_BYTES: dict[str, float] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


class SafetensorsError(ValueError):
    """The file is not a safetensors file or its header is corrupt."""


@dataclass(frozen=True, kw_only=True)
class TensorMeta:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def element_count(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True, kw_only=True)
class SafetensorsSummary:
    tensors: tuple[TensorMeta, ...]

    @property
    def parameter_count(self) -> int:
        return sum(tensor.element_count for tensor in self.tensors)

    @property
    def dtype(self) -> str | None:
        """The dtype holding the most elements (norms are often kept in F32)."""
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.element_count
        return max(counts, key=lambda d: counts[d]) if counts else None


def read_safetensors_header(path: Path) -> tuple[TensorMeta, ...]:
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) != 8:
            raise SafetensorsError(f"{path.name}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise SafetensorsError(f"{path.name}: header of {length} bytes is too large")
        raw = stream.read(length)
    if len(raw) != length:
        raise SafetensorsError(f"{path.name}: truncated header")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"{path.name}: header is not JSON") from exc
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path.name}: header is not a JSON object")
    return tuple(_tensor(name, entry) for name, entry in header.items() if name != "__metadata__")


def summarize(paths: Iterable[Path]) -> SafetensorsSummary:
    """Summarize all shards of a checkpoint together."""
    tensors: list[TensorMeta] = []
    for path in sorted(paths):
        tensors.extend(read_safetensors_header(path))
    return SafetensorsSummary(tensors=tuple(tensors))


def _tensor(name: str, entry: object) -> TensorMeta:
    if not isinstance(entry, dict):
        raise SafetensorsError(f"tensor {name!r}: entry is not an object")
    dtype, shape = entry.get("dtype"), entry.get("shape")
    if not isinstance(dtype, str) or not isinstance(shape, list):
        raise SafetensorsError(f"tensor {name!r}: missing dtype or shape")
    if not all(isinstance(dim, int) and dim >= 0 for dim in shape):
        raise SafetensorsError(f"tensor {name!r}: bad shape")
    return TensorMeta(name=name, dtype=dtype, shape=tuple(shape))
