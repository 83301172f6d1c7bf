"""The pack format: every record checkable on its own, any cut detected."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmail.blobs import packs

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


def items(contents: list[bytes]) -> list[packs.Item]:
    return [packs.Item(hashlib.sha256(c).hexdigest(), c, 0, len(c)) for c in contents]


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.data())
def test_a_pack_cut_anywhere_keeps_its_whole_records_and_loses_the_rest(contents, data):
    # A crash can leave a pack cut at any byte: a scan yields exactly the records that
    # are whole, and reading a cut record through the index fails instead of returning
    # part of it.
    built, entries = packs.build(items(contents))
    assert list(packs.scan(built)) == entries
    cut = data.draw(st.integers(min_value=len(packs.MAGIC), max_value=len(built) - 1))
    torn = built[:cut]
    whole = [e for e in entries if e.offset + e.length <= cut]
    assert list(packs.scan(torn)) == whole
    for entry in entries[len(whole) :]:
        chunk = torn[entry.offset - packs.HEADER_SIZE : entry.offset + entry.length]
        with pytest.raises(packs.PackError):
            packs.record(chunk, entry.sha256)


@given(st.binary(min_size=1, max_size=200), st.data())
def test_a_changed_byte_is_caught(content, data):
    built, (entry,) = packs.build(items([content]))
    at = data.draw(st.integers(min_value=entry.offset, max_value=entry.offset + entry.length - 1))
    changed = bytearray(built)
    changed[at] ^= 0xFF
    chunk = bytes(changed[entry.offset - packs.HEADER_SIZE :])
    with pytest.raises(packs.PackError):
        packs.record(chunk, entry.sha256)
    assert list(packs.scan(bytes(changed))) == []
    assert packs.record(built[entry.offset - packs.HEADER_SIZE :], entry.sha256) == content


def test_a_record_read_for_another_blob_is_refused():
    built, (a, b) = packs.build(items([b"one", b"two"]))
    with pytest.raises(packs.PackError):
        packs.record(built[b.offset - packs.HEADER_SIZE : b.offset + b.length], a.sha256)
