"""Where packs are kept: files under the data dir (the default), or objects in
S3-compatible storage for several machines (``CRMAIL_BLOB_URL=s3://bucket/prefix``;
the endpoint and credentials from the usual variables: ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``).

A backend writes a whole pack at once and makes it durable before ``write`` returns; it
reads byte ranges of a pack, lists packs with their age, and deletes one. Nothing else.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from crmail.blobs import packs
from crmail.failpoints import failpoint


def location(url: str) -> tuple[str, str, str]:
    """What ``CRMAIL_BLOB_URL`` names: ("file", its path, "") or ("s3", a bucket, a
    prefix). Raises ``ValueError``, in words, for anything else."""
    if url.startswith("file:") and len(url) > len("file:"):
        return "file", url.removeprefix("file:"), ""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if url.startswith("s3://") and bucket:
        return "s3", bucket, prefix
    raise ValueError(f"CRMAIL_BLOB_URL must be file:/path or s3://bucket/prefix, not {url!r}")


def opened(url: str) -> Backend:
    """The store ``url`` names (``location``): packs as files, or objects in a bucket."""
    kind, where, prefix = location(url)
    return FileBackend(Path(where)) if kind == "file" else S3Backend(where, prefix)


class Backend(Protocol):
    def write(self, name: str, parts: Sequence[bytes]) -> None:
        """Store the pack made of ``parts`` in order, durably, under ``name``."""
        ...

    def read(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]: ...

    def delete(self, name: str) -> None: ...

    def names(self) -> Iterator[tuple[str, float]]:
        """Each pack's name and how many seconds ago it was written."""
        ...

    def describe(self) -> str: ...


# Where a blob lies: (its hash, its pack's name, offset, length, compression).
Place = tuple[str, str, int, int, int]


def read_places(store: Backend, where: Iterable[Place]) -> dict[str, tuple[bytes, int]]:
    """The stored form of each blob at ``where`` in ``store``, each record checked
    (``packs.record``); no database: a process of its own may call it."""
    by_pack: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)
    for digest, name, offset, length, compression in where:
        by_pack[name].append((digest, offset, length, compression))
    found: dict[str, tuple[bytes, int]] = {}
    for name, blobs in by_pack.items():
        spans = [packs.span(offset, length) for _, offset, length, _ in blobs]
        chunks = store.read(name, spans)
        for (digest, _, _, compression), chunk in zip(blobs, chunks, strict=True):
            found[digest] = (packs.record(chunk, digest), compression)
    return found


class FileBackend:
    """Packs as files ``ROOT/ab/abcdef….pack``, written under a temporary name, fsynced,
    renamed and the directory fsynced: a pack is whole under its name or not there."""

    SUFFIX = ".pack"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root / name[:2] / f"{name}{self.SUFFIX}"

    def write(self, name: str, parts: Sequence[bytes]) -> None:
        path = self._path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for n, part_bytes in enumerate(parts):
                if n == len(parts) // 2:
                    failpoint("pack-write")
                view = memoryview(part_bytes)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def read(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        with open(self._path(name), "rb") as f:
            return [os.pread(f.fileno(), length, offset) for offset, length in ranges]

    def delete(self, name: str) -> None:
        path = self.root / name[:2] / name if name.endswith(".part") else self._path(name)
        path.unlink(missing_ok=True)

    def names(self) -> Iterator[tuple[str, float]]:
        now = time.time()
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/*"):
            if path.suffix in (self.SUFFIX, ".part"):
                age = now - path.stat().st_mtime
                # A ``.part`` file is a pack a crash cut short: listed under its own
                # name so that it is collected like any pack without rows.
                yield (path.stem if path.suffix == self.SUFFIX else path.name), age

    def describe(self) -> str:
        return f"files under {self.root}"


class S3Backend:
    """Packs as objects ``PREFIX/ab/abcdef….pack`` in a bucket of S3-compatible storage
    (AWS S3, MinIO, Ceph RGW): a PUT is whole or absent, and durable when it answers.
    A pack's byte ranges are read with one ranged GET."""

    def __init__(self, bucket: str, prefix: str, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client if client is not None else _s3_client()

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name[:2]}/{name}.pack"

    def _ask(self, method: str, **kwargs: Any) -> Any:
        """One request; the storage's refusals and unreachability as ``OSError``, as a
        file system's would be (the callers say them in words)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise OSError(f"{error.get('Code', 'error')}: {error.get('Message', '')}") from exc
        except BotoCoreError as exc:
            raise OSError(str(exc)) from exc

    def write(self, name: str, parts: Sequence[bytes]) -> None:
        failpoint("pack-write")  # an object is put whole or not at all
        self._ask("put_object", Key=self._key(name), Body=b"".join(parts))

    def read(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        if not ranges:
            return []
        low = min(offset for offset, _ in ranges)
        high = max(offset + length for offset, length in ranges)
        answer = self._ask("get_object", Key=self._key(name), Range=f"bytes={low}-{high - 1}")
        data = answer["Body"].read()
        return [data[offset - low : offset - low + length] for offset, length in ranges]

    def delete(self, name: str) -> None:
        self._ask("delete_object", Key=self._key(name))

    def names(self) -> Iterator[tuple[str, float]]:
        now = time.time()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith(".pack"):
                    age = now - item["LastModified"].timestamp()
                    yield key.rsplit("/", 1)[-1].removesuffix(".pack"), age

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _s3_client() -> Any:
    """boto3's S3 client from the usual variables. With an endpoint of its own (MinIO,
    Ceph RGW) buckets are addressed by path, which every such server understands, and
    checksums are sent only where S3 requires them (older servers refuse the others)."""
    import boto3
    from botocore.config import Config

    custom = bool(os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"))
    config = Config(
        s3={"addressing_style": "path"} if custom else {},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
    )
    return boto3.client("s3", config=config)
