"""Where packs are kept: files under the data dir (the default), or objects in
S3-compatible storage for several machines (``CRMAIL_BLOB_URL``).

A backend writes a whole pack at once and makes it durable before ``write`` returns; it
reads byte ranges of a pack, lists packs with their age, and deletes one. Nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol


class Backend(Protocol):
    def write(self, name: str, data: bytes) -> None: ...

    def read(self, name: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]: ...

    def read_all(self, name: str) -> bytes: ...

    def delete(self, name: str) -> None: ...

    def names(self) -> Iterator[tuple[str, float]]:
        """Each pack's name and how many seconds ago it was written."""
        ...

    def describe(self) -> str: ...


class FileBackend:
    """Packs as files ``ROOT/ab/abcdef….pack``, written under a temporary name, fsynced,
    renamed and the directory fsynced: a pack is whole under its name or not there."""

    SUFFIX = ".pack"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        return self.root / name[:2] / f"{name}{self.SUFFIX}"

    def write(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
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

    def read_all(self, name: str) -> bytes:
        return self._path(name).read_bytes()

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
