"""A GGUF header reader: metadata and tensor shapes, never the weights.

Layout (little endian, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
magic ``GGUF``, uint32 version, tensor count and metadata count (uint64 since v2),
then ``count`` typed key/value pairs, then one info record per tensor
(name, dims, ggml type, data offset). Everything is bounded, so a hostile file can
make the reader fail but not allocate without limit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"
MAX_COUNT = 10_000_000  # metadata entries, tensors or array items
MAX_STRING_BYTES = 16 * 1024 * 1024
MAX_DIMS = 8
KEPT_ARRAY_ITEMS = 64  # longer arrays (tokenizer vocabularies) are only counted

_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# llama.cpp's LLAMA_FTYPE values, as written to general.file_type.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
}

# ggml tensor types, used when general.file_type is missing.
TENSOR_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    30: "BF16",
}


class GGUFError(ValueError):
    """The file is not a GGUF file, or its header is corrupt or beyond the reader's limits."""


@dataclass(frozen=True, kw_only=True)
class ArraySummary:
    """A metadata array too long to keep (a tokenizer vocabulary): its length only."""

    item_type: int
    count: int


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int

    @property
    def element_count(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True, kw_only=True)
class GGUFHeader:
    version: int
    metadata: dict[str, object] = field(default_factory=dict)
    tensors: tuple[TensorInfo, ...] = ()

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    def arch_value(self, key: str) -> object:
        """``<architecture>.<key>``, e.g. ``arch_value("context_length")``."""
        return self.metadata.get(f"{self.architecture}.{key}")

    @property
    def parameter_count(self) -> int:
        return sum(tensor.element_count for tensor in self.tensors)

    @property
    def quantization(self) -> str | None:
        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int) and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        return self._dominant_tensor_type()

    def _dominant_tensor_type(self) -> str | None:
        counts: dict[int, int] = {}
        for tensor in self.tensors:
            counts[tensor.ggml_type] = counts.get(tensor.ggml_type, 0) + tensor.element_count
        if not counts:
            return None
        dominant = max(counts, key=lambda t: counts[t])
        return TENSOR_TYPES.get(dominant, f"ggml_type_{dominant}")


def read_gguf_header(path: Path) -> GGUFHeader:
    """Read the metadata and tensor infos of the GGUF file at ``path``."""
    with path.open("rb") as stream:
        return _Reader(stream).header()


class _Reader:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._count_format = "<Q"

    def header(self) -> GGUFHeader:
        if self._stream.read(4) != MAGIC:
            raise GGUFError("not a GGUF file (bad magic)")
        version = self._scalar("<I")
        if version not in (1, 2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        if version == 1:
            self._count_format = "<I"
        tensor_count = self._count()
        metadata_count = self._count()
        metadata = dict(self._key_value() for _ in range(metadata_count))
        tensors = tuple(self._tensor_info() for _ in range(tensor_count))
        return GGUFHeader(version=version, metadata=metadata, tensors=tensors)

    def _key_value(self) -> tuple[str, object]:
        key = self._string()
        return key, self._value(self._scalar("<I"))

    def _value(self, value_type: int) -> object:
        if value_type in _SCALARS:
            return self._scalar(_SCALARS[value_type])
        if value_type == _STRING:
            return self._string()
        if value_type == _ARRAY:
            return self._array()
        raise GGUFError(f"unknown metadata value type {value_type}")

    def _array(self) -> object:
        item_type = self._scalar("<I")
        if item_type == _ARRAY:
            raise GGUFError("nested metadata arrays are not supported")
        count = self._count()
        items = [self._value(item_type) for _ in range(count)]
        if count > KEPT_ARRAY_ITEMS:
            return ArraySummary(item_type=item_type, count=count)
        return items

    def _tensor_info(self) -> TensorInfo:
        name = self._string()
        n_dims = self._scalar("<I")
        if n_dims > MAX_DIMS:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions")
        shape = tuple(self._scalar("<Q") for _ in range(n_dims))
        ggml_type = self._scalar("<I")
        self._scalar("<Q")  # data offset: the weights are never read
        return TensorInfo(name=name, shape=shape, ggml_type=ggml_type)

    def _count(self) -> int:
        count = self._scalar(self._count_format)
        if count > MAX_COUNT:
            raise GGUFError(f"count {count} exceeds the reader's limit")
        return int(count)

    def _string(self) -> str:
        length = self._count() if self._count_format == "<I" else self._scalar("<Q")
        if length > MAX_STRING_BYTES:
            raise GGUFError(f"string of {length} bytes exceeds the reader's limit")
        return self._exact(length).decode("utf-8", errors="replace")

    def _scalar(self, fmt: str) -> Any:
        (value,) = struct.unpack(fmt, self._exact(struct.calcsize(fmt)))
        return value

    def _exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise GGUFError("unexpected end of file in the GGUF header")
        return data
