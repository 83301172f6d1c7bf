"""The pack format: many stored blobs in one file or object, each checkable on its own.

A pack is ``MAGIC`` followed by records. A record is a header, then the stored bytes:

    b"CRMB" | SHA-256 of the content (32 bytes) | compression (1 byte)
    | content size (8 bytes) | stored length (8 bytes) | CRC-32 of the stored bytes (4 bytes)

integers big-endian. The index in the database (``blobs.Blob``) points at the stored bytes
of each record (offset and length); ``scan`` reads a pack on its own, header by header,
and stops at the first record that is cut short or does not check out, so a pack torn by
a crash is known for what it is (decision 050).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAGIC = b"CRMPACK\x01"
RECORD = b"CRMB"
_HEADER = struct.Struct(">4s32sBQQI")
HEADER_SIZE = _HEADER.size


class PackError(ValueError):
    """A pack or record that is not what the index says: cut short, or its bytes changed."""


@dataclass(frozen=True)
class Item:
    """One blob to be written: its content's SHA-256 (hex), its stored form and how it is
    compressed, and the content's size."""

    sha256: str
    stored: bytes
    compression: int
    size: int


@dataclass(frozen=True)
class Entry:
    """Where a blob's stored bytes lie in its pack."""

    sha256: str
    offset: int
    length: int
    compression: int
    size: int


def build(items: Sequence[Item]) -> tuple[bytes, list[Entry]]:
    """The pack holding ``items`` in order, and where each one's stored bytes lie."""
    parts, entries = layout(items)
    return b"".join(parts), entries


def layout(items: Sequence[Item]) -> tuple[list[bytes], list[Entry]]:
    """The pack holding ``items`` as its pieces in order (written one after the other,
    never copied into one buffer), and where each one's stored bytes lie."""
    return pieces(items), places(items)


def pieces(items: Sequence[Item]) -> list[bytes]:
    """The pack holding ``items``, as its pieces in order."""
    parts = [MAGIC]
    for item in items:
        header = _HEADER.pack(
            RECORD,
            bytes.fromhex(item.sha256),
            item.compression,
            item.size,
            len(item.stored),
            zlib.crc32(item.stored),
        )
        parts += [header, item.stored]
    return parts


def places(items: Sequence[Item]) -> list[Entry]:
    """Where each of ``items``' stored bytes lie in the pack ``pieces`` makes of them:
    sizes alone, so it is known before the pack is built."""
    entries = []
    offset = len(MAGIC)
    for item in items:
        offset += HEADER_SIZE
        entries.append(Entry(item.sha256, offset, len(item.stored), item.compression, item.size))
        offset += len(item.stored)
    return entries


def size(entries: Sequence[Entry]) -> int:
    """The size of the pack whose records ``entries`` are, in order."""
    return entries[-1].offset + entries[-1].length if entries else len(MAGIC)


def span(offset: int, length: int) -> tuple[int, int]:
    """Where the record whose stored bytes lie at ``offset`` (``length`` of them, as the
    index says) lies in its pack, its header included: what ``record`` reads."""
    return offset - HEADER_SIZE, length + HEADER_SIZE


def record(chunk: bytes, sha256: str) -> bytes:
    """The stored bytes of the record ``chunk`` (its header and stored bytes, as the index
    locates them); raises ``PackError`` when they are not those of ``sha256``'s record."""
    if len(chunk) < HEADER_SIZE:
        raise PackError("the record is cut short")
    magic, digest, _, _, length, crc = _HEADER.unpack_from(chunk)
    stored = chunk[HEADER_SIZE:]
    if magic != RECORD or digest.hex() != sha256 or len(stored) != length:
        raise PackError("the record is not the one the index points at")
    if zlib.crc32(stored) != crc:
        raise PackError("the stored bytes have changed since they were written")
    return stored


def scan(data: bytes) -> Iterator[Entry]:
    """Each whole record of the pack ``data``, in order; stops at the first that is cut
    short or does not check out (a torn tail). Raises ``PackError`` when ``data`` does
    not start as a pack."""
    if not data.startswith(MAGIC):
        raise PackError("not a crmail pack")
    offset = len(MAGIC)
    while offset + HEADER_SIZE <= len(data):
        magic, digest, compression, size, length, crc = _HEADER.unpack_from(data, offset)
        start = offset + HEADER_SIZE
        stored = data[start : start + length]
        if magic != RECORD or len(stored) != length or zlib.crc32(stored) != crc:
            return
        yield Entry(digest.hex(), start, length, compression, size)
        offset = start + length
