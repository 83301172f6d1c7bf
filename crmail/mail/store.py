"""Storing raw messages by content: compressed when it pays, never twice.

``store_raw`` is the first step for every message from every source: the bytes are kept
before anything tries to understand them, so nothing a parser chokes on is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import zstandard
from django.db import IntegrityError, transaction

from crmail.mail.models import Compression, Message

# Level 1, not 3: on the benchmark mailboxes it compresses 1.5-3.4 times faster for 1-2 %
# more bytes (docs/decisions/010). Any level decompresses the same way.
ZSTD_LEVEL = 1
MIN_SAVING = 0.9  # keep the compressed form only when it is at most 90 % of the original
_compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
_decompressor = zstandard.ZstdDecompressor()


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def pack(raw: bytes) -> tuple[bytes, int]:
    """The stored form of ``raw`` and its compression (mail attachments rarely compress)."""
    packed = _compressor.compress(raw)
    if len(packed) <= len(raw) * MIN_SAVING:
        return packed, Compression.ZSTD
    return raw, Compression.NONE


def unpack(stored: bytes | memoryview, compression: int) -> bytes:
    data = bytes(stored)
    if compression == Compression.ZSTD:
        return _decompressor.decompress(data)
    return data


def raw_bytes(message: Message) -> bytes:
    """The message exactly as the server gave it."""
    return unpack(message.raw, message.compression)


def store_many(raws: Iterable[bytes]) -> list[Message]:
    """Store each raw message unless its content is stored already; one Message per input.

    New rows start as ``pending``: parsing is a later step, off the fetch path.
    """
    raws = list(raws)
    hashes = [content_hash(r) for r in raws]
    known = {m.sha256: m for m in Message.objects.filter(sha256__in=set(hashes)).defer("raw")}
    fresh: dict[str, Message] = {}
    for raw, digest in zip(raws, hashes, strict=True):
        if digest in known or digest in fresh:
            continue
        packed, compression = pack(raw)
        fresh[digest] = Message(sha256=digest, size=len(raw), raw=packed, compression=compression)
    if fresh:
        try:
            with transaction.atomic():
                Message.objects.bulk_create(fresh.values())
        except IntegrityError:
            # Another worker stored some of these meanwhile: take theirs, add the rest.
            for digest, row in fresh.items():
                with transaction.atomic():
                    existing = Message.objects.filter(sha256=digest).defer("raw").first()
                    if existing is None:
                        row.save()
                    else:
                        fresh[digest] = existing
        if not all(m.pk for m in fresh.values()):  # backends without RETURNING ids
            ids = dict(Message.objects.filter(sha256__in=list(fresh)).values_list("sha256", "pk"))
            for digest, row in fresh.items():
                row.pk = ids[digest]
        known.update(fresh)
    return [known[d] for d in hashes]


def store_raw(raw: bytes) -> Message:
    return store_many([raw])[0]
