"""The index of the blob store: which pack holds each blob, and where (decision 050).

A blob is known by its content's SHA-256; the bytes lie in a pack (a file under
``DATA_DIR/blobs/`` or an object in S3-compatible storage), written and made durable before
its rows are committed here. A pack without rows (a crash between the two) is garbage that
``blobs.store.collect`` removes; a row never points at bytes that were not durable.
"""

from __future__ import annotations

from django.db import models


class Pack(models.Model):
    name = models.CharField(max_length=32, unique=True)
    size = models.BigIntegerField(help_text="Bytes of the pack, headers included.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pack {self.name}"


class Blob(models.Model):
    sha256 = models.CharField(max_length=64, primary_key=True)
    pack = models.ForeignKey(Pack, on_delete=models.PROTECT, related_name="blobs")
    # Where the record's stored bytes start in the pack, and how many there are; the
    # record's header lies just before them (``blobs.packs``).
    offset = models.BigIntegerField()
    length = models.BigIntegerField()
    compression = models.PositiveSmallIntegerField()
    size = models.BigIntegerField(help_text="Bytes of the content, uncompressed.")

    def __str__(self) -> str:
        return f"blob {self.sha256[:12]}"
