"""File storage: ids cannot name paths (S9), uploads stop at the cap (S12), writes are atomic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regolo.server.batch.files import FileStore, is_file_id, new_file_id
from regolo.server.errors import NotFound, PayloadTooLarge


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    "file_id",
    [
        "../x",
        "file-../../etc",
        "/etc/passwd",
        "file-%2e%2e",
        "file-a/b",
        "file-\x00",
        "file-A",
        "file-",
    ],
)
def test_traversal_ids_are_not_found(tmp_path: Path, file_id: str) -> None:
    store = FileStore(tmp_path / "files", max_file_bytes=100)
    with pytest.raises(NotFound):
        store.path(file_id)


@given(st.text(max_size=80))
def test_a_valid_id_always_stays_inside_the_folder(text: str) -> None:
    root = Path("/srv/regolo/files")
    if is_file_id(text):
        assert FileStore(root, max_file_bytes=1).path(text).parent == root


def test_upload_at_the_cap_is_kept_and_over_it_nothing_is(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files", max_file_bytes=10)
    kept = new_file_id()
    assert asyncio.run(store.save_stream(kept, chunks(b"12345", b"67890"))) == 10
    refused = new_file_id()
    with pytest.raises(PayloadTooLarge):
        asyncio.run(store.save_stream(refused, chunks(b"12345", b"678901")))
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == [kept]


def test_write_read_delete(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files", max_file_bytes=100)
    file_id = new_file_id()
    store.write_bytes(file_id, b"a\nb\n")
    store.write_bytes(file_id, b"c\n")  # replaced whole
    assert b"".join(store.read_chunks(file_id)) == b"c\n"
    store.delete(file_id)
    store.delete(file_id)  # twice is fine
    with pytest.raises(NotFound):
        list(store.read_chunks(file_id))
