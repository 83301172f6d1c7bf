"""A corpus of hostile mail, built in memory: what a mail server will deliver and a careless
client loses, misreads or stores under another message's id.

``hostile_corpus()`` returns {name: raw bytes}; ``as_served(raw, protocol)`` the bytes
Dovecot serves for them (it stores line ends as LF and serves CRLF; IMAP sends a NUL as
0x80, POP3 as it is). Nothing here is committed as a file: the large cases are built here.
"""

from __future__ import annotations

import base64
import random
import re

BIG_ATTACHMENT = 30 * 1024 * 1024
MULTIPART_A = 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="a"\r\n'


def _head(name: str, extra: str = "") -> bytes:
    return (
        f"From: Hostile <hostile@example.com>\r\nTo: rep@crmail.test\r\n"
        f"Subject: {name}\r\nMessage-ID: <{name}@hostile.example>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n{extra}"
    ).encode()


def _nested(depth: int) -> bytes:
    parts = [b"Content-Type: text/plain\r\n\r\nthe innermost part\r\n"]
    for level in range(depth):
        inner = parts[-1]
        parts.append(
            f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n--n{level}\r\n'.encode()
            + inner
            + f"\r\n--n{level}--\r\n".encode()
        )
    return parts[-1]


def hostile_corpus(*, big: bool = True) -> dict[str, bytes]:
    """The hostile messages by name; ``big`` adds the 30 MB attachment."""
    rng = random.Random(8)
    corpus: dict[str, bytes] = {
        "broken-mime": _head("broken-mime", 'Content-Type: multipart/mixed; boundary="b"\r\n')
        + b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n",
        "odd-charsets": _head(
            "odd-charsets",
            "Content-Type: text/plain; charset=unknown-8bit\r\n"
            "X-Other: =?DEFAULT?Q?caf=E9?= =?utf-7?B?K0FPa0Et?=\r\n",
        )
        + b"\r\ncaf\xe9 \xff\xfe na\xefve \xc3\x28\r\n",
        "nul-bytes": _head("nul-bytes", "X-Nul: a\x00b\r\n") + b"\r\nbefore\x00after\r\n\x00\r\n",
        "nesting-1000": _head("nesting-1000", "MIME-Version: 1.0\r\n") + _nested(1000),
        "no-headers": b"Just a body, no header at all.\r\nSecond line.\r\n",
        "no-header-no-end": b"a body without any line end",
        "bare-cr": _head("bare-cr").replace(b"\r\n", b"\r") + b"\rline one\rline two\r",
        "bare-lf": _head("bare-lf").replace(b"\r\n", b"\n") + b"\nline one\nline two\n",
        "mixed-ends": _head("mixed-ends") + b"\r\none\ntwo\rthree\r\n\n\r\r\n",
        "recipients-5000": _head(
            "recipients-5000",
            "Cc: " + ",\r\n ".join(f"Person {i} <p{i}@r{i % 50}.example>" for i in range(5000)),
        )
        + b"\r\n\r\nto everyone\r\n",
        "line-3000": _head("line-3000") + b"\r\n" + b"w" * 3000 + b"\r\nafter\r\n",
        "line-100000": _head("line-100000") + b"\r\n" + b"z" * 100_000 + b"\r\nafter\r\n",
        "plus-ok-inside": _head("plus-ok-inside")
        + b"\r\n"
        + b"y" * 3000
        + b"\r\n+OK 40 octets\r\nFrom: forged@else.example\r\n"
        b"Message-ID: <forged@else.example>\r\n\r\nforged\r\n.\r\n+OK\r\n-ERR no\r\n",
        "dot-inside": _head("dot-inside") + b"\r\n.\r\n..\r\n.x\r\n. \r\nend\r\n.",
        "fetch-lookalikes": _head("fetch-lookalikes")
        + b"\r\n* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\nC1 OK done\r\n* BYE\r\n"
        b")\r\n{100}\r\n* 2 EXPUNGE\r\n",
        "header-only": _head("header-only"),
    }
    if big:
        blob = base64.encodebytes(rng.randbytes(BIG_ATTACHMENT * 3 // 4)).replace(b"\n", b"\r\n")
        corpus["attachment-30mb"] = (
            _head("attachment-30mb", MULTIPART_A)
            + b"\r\n--a\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--a\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--a--\r\n"
        )
    return corpus


_LINE_END = re.compile(rb"\r*\n")


def as_served(raw: bytes, protocol: str) -> bytes:
    """What Dovecot serves for ``raw`` delivered with doveadm save. It stores line ends as
    LF: any CRs before an LF go, and one CR at the very end; it serves each LF as CRLF,
    keeps other bare CRs, and over IMAP (not BINARY) sends a NUL as 0x80."""
    served = _LINE_END.sub(b"\r\n", raw[:-1] if raw.endswith(b"\r") else raw)
    return served.replace(b"\x00", b"\x80") if protocol == "imap" else served
