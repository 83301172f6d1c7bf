"""Test mail in bulk: generated messages of mixed sizes written straight into a Maildir.

`doveadm save` costs a process per message; writing files into ``Maildir/cur`` and
running ``doveadm force-resync`` fills a mailbox with thousands of messages in a second.
"""

from __future__ import annotations

import base64
import os
import random
import time
from pathlib import Path

from tests.harness.dovecot import VMAIL_ID, DovecotServer


def make_message(i: int, size: int, rng: random.Random) -> bytes:
    """A CRLF message of about ``size`` bytes: text, plus a base64 attachment when large."""
    head = (
        f"From: Sender {i} <sender{i % 97}@example.org>\r\n"
        f"To: alice@example.org\r\n"
        f"Subject: Message number {i}\r\n"
        f"Message-ID: <gen-{i}@example.org>\r\n"
        f"Date: Mon, 2 Nov 2026 10:{i % 60:02d}:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()
    text = (f"Hello, this is message {i}.\r\n" * 8).encode()
    if size < 4096:
        return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
    blob = base64.encodebytes(rng.randbytes(max(size * 3 // 4 - 1200, 1))).replace(b"\n", b"\r\n")
    return (
        head + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + b"\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--b--\r\n"
    )


def mixed_sizes(count: int, rng: random.Random) -> list[int]:
    """Sizes like a business mailbox: mostly small, some with attachments, a few large."""
    sizes = []
    for _ in range(count):  # mean about 69 kB, as TESTING.md's 4,000 messages / 275 MB
        r = rng.random()
        if r < 0.60:
            sizes.append(rng.randint(1_000, 8_000))
        elif r < 0.90:
            sizes.append(rng.randint(20_000, 150_000))
        elif r < 0.985:
            sizes.append(rng.randint(100_000, 500_000))
        else:
            sizes.append(rng.randint(500_000, 1_500_000))
    return sizes


def fill_maildir(
    server: DovecotServer, user: str, count: int, *, seed: int = 1, mailbox: str = "INBOX"
) -> list[bytes]:
    """Write ``count`` messages into ``user``'s ``mailbox`` (INBOX or a top-level folder).

    Returns the raw messages in UID order (files are named so Dovecot assigns UIDs in
    that order on resync).
    """
    rng = random.Random(seed)
    root = server.user_home(user) / "Maildir"
    if mailbox != "INBOX":
        server.create_mailbox(user, mailbox)
        root = root / mailbox
    cur = root / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    base = int(time.time()) - count
    messages = []
    for i, size in enumerate(mixed_sizes(count, rng)):
        raw = make_message(i, size, rng)
        messages.append(raw)
        path = Path(cur, f"{base + i}.M{i:06d}P1.gen,S={len(raw)},W={len(raw)}:2,")
        path.write_bytes(raw)
        os.chown(path, VMAIL_ID, VMAIL_ID)
        os.utime(path, (base + i, base + i))
    for p in (root, cur):
        os.chown(p, VMAIL_ID, VMAIL_ID)
    server.doveadm("force-resync", "-u", user, mailbox)
    return messages
