"""Response compression for endpoints with ``enable_compression``: br if available, else gzip."""

from __future__ import annotations

import importlib
import zlib
from types import ModuleType

brotli: ModuleType | None
try:  # optional: br only when the brotli package is installed
    brotli = importlib.import_module("brotli")
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

MIN_COMPRESS_BYTES = 1024


def choose_encoding(accept_encoding: bytes | None) -> bytes | None:
    """The encoding to use for a client sending ``accept_encoding``, or ``None``."""
    if not accept_encoding:
        return None
    offered = {_token(part) for part in accept_encoding.lower().split(b",")}
    if brotli is not None and b"br" in offered:
        return b"br"
    if b"gzip" in offered:
        return b"gzip"
    return None


def compress(body: bytes, encoding: bytes) -> bytes:
    if encoding == b"br" and brotli is not None:
        return bytes(brotli.compress(body, quality=4))
    compressor = zlib.compressobj(5, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    return compressor.compress(body) + compressor.flush()


def _token(part: bytes) -> bytes:
    name, _, params = part.strip().partition(b";")
    if params.replace(b" ", b"") in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000"):
        return b""
    return name.strip()
