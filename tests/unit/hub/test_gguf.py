"""The GGUF header reader, on the real demo model and on hand-written files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from regolo.server.hub.gguf import ArraySummary, GGUFError, read_gguf_header


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(
    path: Path,
    metadata: list[tuple[str, int, bytes]],
    tensors: list[tuple[str, tuple[int, ...], int]],
    *,
    version: int = 3,
) -> Path:
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, value_type, payload in metadata:
        out += _string(key) + struct.pack("<I", value_type) + payload
    for name, shape, ggml_type in tensors:
        out += _string(name) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", ggml_type, 0)
    path.write_bytes(out)
    return path


def test_demo_model_header(demo_gguf: Path) -> None:
    header = read_gguf_header(demo_gguf)
    assert header.version == 3
    assert header.architecture == "llama"
    assert header.arch_value("context_length") == 8192
    assert header.arch_value("block_count") == 30
    assert header.arch_value("embedding_length") == 576
    assert header.arch_value("attention.head_count") == 9
    assert header.arch_value("attention.head_count_kv") == 3
    assert header.quantization == "Q4_1"
    assert len(header.tensors) == 272
    assert header.parameter_count == 134_515_008
    assert header.metadata["general.license"] == "apache-2.0"
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, ArraySummary) and tokens.count == 49152
    assert isinstance(header.metadata["tokenizer.chat_template"], str)


def test_handwritten_file(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        [
            ("general.architecture", 8, _string("bert")),
            ("bert.context_length", 4, struct.pack("<I", 512)),
            ("bert.embedding_length", 4, struct.pack("<I", 32)),
            ("flags", 9, struct.pack("<IQ", 7, 2) + b"\x01\x00"),
            ("scale", 6, struct.pack("<f", 0.5)),
        ],
        [("token_embd.weight", (32, 100), 1), ("norm.weight", (32,), 0)],
    )
    header = read_gguf_header(path)
    assert header.architecture == "bert"
    assert header.metadata["flags"] == [True, False]
    assert header.parameter_count == 32 * 100 + 32
    assert header.quantization == "F16"  # dominant tensor type when general.file_type is absent


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"GGML" + b"\x00" * 20,
        b"GGUF" + struct.pack("<I", 99) + b"\x00" * 16,
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**40),  # huge key
        b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0),  # absurd tensor count
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string("k") + struct.pack("<I", 42),
        b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + _string("t") + struct.pack("<I", 99),
    ],
)
def test_corrupt_files_raise_gguf_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError):
        read_gguf_header(path)


def test_truncated_demo_header_raises(tmp_path: Path, demo_gguf: Path) -> None:
    path = tmp_path / "cut.gguf"
    with demo_gguf.open("rb") as stream:
        path.write_bytes(stream.read(100_000))
    with pytest.raises(GGUFError):
        read_gguf_header(path)
