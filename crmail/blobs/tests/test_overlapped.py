"""Packs written by another thread while the rows naming them are written: durable before
the block ends, and a failed write takes the rows with it."""

from __future__ import annotations

import hashlib
import time

import pytest
from django.db import transaction

from crmail.blobs import packs
from crmail.blobs import store as blob_store
from crmail.blobs.models import Blob, Pack

pytestmark = pytest.mark.django_db


def _items(*contents: bytes) -> list[packs.Item]:
    return [packs.Item(hashlib.sha256(c).hexdigest(), c, 0, len(c)) for c in contents]


def test_a_pack_written_meanwhile_is_whole_on_disk_when_the_block_ends(monkeypatch):
    backend = blob_store.backend()
    real_write = backend.write

    def slow(name, parts):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # still writing when the caller has recorded its rows
        real_write(name, parts)

    monkeypatch.setattr(backend, "write", slow)
    items = _items(b"first message", b"second message " * 100)
    with transaction.atomic(), blob_store.overlapped():
        written = blob_store.write(items)
        blob_store.record(written)
    assert written.size == len(packs.build(items)[0])
    found = blob_store.read_many([i.sha256 for i in items])
    assert {d: stored for d, (stored, _) in found.items()} == {i.sha256: i.stored for i in items}


def test_a_write_that_fails_meanwhile_leaves_no_row_naming_it(monkeypatch):
    def full(name, parts):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blob_store.backend(), "write", full)
    with (
        pytest.raises(OSError, match="No space left"),
        transaction.atomic(),
        blob_store.overlapped(),
    ):
        blob_store.record(blob_store.write(_items(b"lost unless refused")))
    assert not Pack.objects.exists() and not Blob.objects.exists()


def test_outside_the_block_a_write_is_durable_when_it_returns():
    items = _items(b"on its own")
    written = blob_store.write(items)
    with transaction.atomic():
        blob_store.record(written)
    assert blob_store.read_many([items[0].sha256])[items[0].sha256][0] == b"on its own"
