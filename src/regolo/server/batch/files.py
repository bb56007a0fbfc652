"""Batch files on disk under ``$REGOLO_HOME/files``: one file per id, written atomically.

Ids are validated before any path is built, so no id can name a path outside the
folder (RELIABILITY S9). Writes go to a temporary name, are fsynced and renamed, so a
crash leaves either the old content or the new, never a torn file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from regolo.server.errors import NotFound, PayloadTooLarge

FILE_ID = re.compile(r"^file-[a-z0-9]{1,64}$")
CHUNK_BYTES = 1024 * 1024


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def is_file_id(file_id: str) -> bool:
    return bool(FILE_ID.fullmatch(file_id))


class FileStore:
    def __init__(self, root: Path, *, max_file_bytes: int) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes

    def path(self, file_id: str) -> Path:
        """The path of ``file_id``; an id that is not ours is simply not found."""
        if not is_file_id(file_id):
            raise NotFound(f"No such file: {file_id[:80]!r}", param="file_id")
        return self.root / file_id

    async def save_stream(self, file_id: str, chunks: AsyncIterator[bytes]) -> int:
        """Store an upload; over ``max_file_bytes`` nothing is kept and 413 is raised."""
        target = self.path(file_id)
        size = 0
        with self._atomic(target) as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_file_bytes:
                    raise PayloadTooLarge(
                        f"the file exceeds the limit of {self.max_file_bytes} bytes", param="file"
                    )
                out.write(chunk)
        return size

    def write_bytes(self, file_id: str, data: bytes) -> None:
        with self._atomic(self.path(file_id)) as out:
            out.write(data)

    def read_chunks(self, file_id: str) -> Iterator[bytes]:
        path = self.path(file_id)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"No such file: {file_id!r}", param="file_id") from exc
        with handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk

    def iter_lines(self, file_id: str) -> Iterator[bytes]:
        with self.path(file_id).open("rb") as handle:
            yield from handle

    def delete(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(file_id).unlink()

    @contextlib.contextmanager
    def _atomic(self, target: Path) -> Iterator[BinaryIO]:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            with temporary.open("wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
