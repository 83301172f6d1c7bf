"""The floor of a first IMAP sync in Python on this machine: what any client that keeps mail
must do, done as plainly as possible, in a process of its own. Prints JSON on stdout.

One connection (the standard library's ``imaplib``), the folder's UIDs, then ``UID FETCH``
of 500 messages a command; for each message its SHA-256 and crmail's own header-only
parse (``parse.parse_headers``); per batch the raw bytes appended once to one file and
fsynced, and one row per message (hash, UID, subject, sender, date, Message-ID) written to
SQLite in WAL mode with one ``executemany`` and a commit. No compression, no threads, no
framework, no indexes but the primary key: the issue 12 estimate of what the goal rests
on. ``sync_bench.py --floor`` runs it in each round beside mbsync and crmail.

``--process``: everything processed too, on the second core. A second process takes each
batch as soon as its bytes are fsynced (their places in the file, through a pipe), reads
them back from the file, parses each message whole with crmail's parser (body text, HTML
turned into text) and writes its words (crmail's ``words``: subject, addresses, body) to an
SQLite FTS5 table; the run ends when both are done. The floor under crmail's "everything
processed" (its bodies and search index).
"""

from __future__ import annotations

import argparse
import hashlib
import imaplib
import json
import multiprocessing
import os
import re
import sqlite3
import time
from pathlib import Path

from crmail.mail.parse import Unparseable, digest_many, parse_headers
from crmail.search.words import words

BATCH = 500
_LITERAL_UID = re.compile(rb"UID (\d+)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--password-env", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--process", action="store_true", help="bodies and words too")
    args = parser.parse_args()
    start = time.perf_counter()
    args.dir.mkdir(parents=True, exist_ok=True)
    batches: multiprocessing.Queue[list[tuple[int, int]] | None] | None = None
    if args.process:
        batches = multiprocessing.Queue()
        worker = multiprocessing.Process(target=process, args=(args.dir, batches))
        worker.start()
    db = sqlite3.connect(args.dir / "floor.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE message (sha256 TEXT PRIMARY KEY, uid INTEGER, subject TEXT, "
        "sender TEXT, date TEXT, message_id TEXT)"
    )
    imap = imaplib.IMAP4("127.0.0.1", args.port)
    imap.login(args.login, os.environ[args.password_env])
    imap.select("INBOX", readonly=True)
    _, found = imap.uid("SEARCH", "ALL")
    uids = found[0].split()
    stored = 0
    with (args.dir / "raw.pack").open("ab") as pack:
        for first in range(0, len(uids), BATCH):
            chunk = b",".join(uids[first : first + BATCH]).decode()
            _, parts = imap.uid("FETCH", chunk, "(BODY.PEEK[])")
            rows = []
            places: list[tuple[int, int]] = []
            for part in parts:
                if not isinstance(part, tuple):
                    continue  # the closing parenthesis of each response
                envelope, raw = part
                uid = _LITERAL_UID.search(envelope)
                row = [hashlib.sha256(raw).hexdigest(), int(uid.group(1)) if uid else None]
                try:
                    head = parse_headers(raw).parsed
                except Unparseable:
                    row += ["", "", "", ""]
                else:
                    sender = [p.address for p in head.participants if p.role == "from"]
                    date = head.date.isoformat() if head.date else ""
                    row += [head.subject, sender[0] if sender else "", date, head.message_id]
                rows.append(row)
                places.append((pack.tell(), len(raw)))
                pack.write(raw)
            pack.flush()
            os.fsync(pack.fileno())
            if batches is not None:
                batches.put(places)
            db.executemany("INSERT OR IGNORE INTO message VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()
            stored += len(rows)
    imap.logout()
    synced = time.perf_counter() - start
    if batches is not None:
        batches.put(None)
        worker.join()
    print(
        json.dumps({"messages": stored, "seconds": time.perf_counter() - start, "synced_s": synced})
    )


def process(where: Path, batches: multiprocessing.Queue[list[tuple[int, int]] | None]) -> None:
    """Parse each batch whole and write its words to an FTS5 table, as batches come."""
    db = sqlite3.connect(where / "words.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE VIRTUAL TABLE words USING fts5(text)")
    pack = None  # opened with the first batch: the file is made as it is written
    while (places := batches.get()) is not None:
        pack = pack or (where / "raw.pack").open("rb")
        raws = [os.pread(pack.fileno(), length, offset) for offset, length in places]
        rows = []
        for done in digest_many(raws, 1_000_000):
            if isinstance(done, Unparseable):
                continue
            parsed = done.parsed
            found = words(parsed.subject) + words(done.body_text)
            for p in parsed.participants:
                found += words(f"{p.name} {p.address}")
            rows.append((" ".join(found),))
        db.executemany("INSERT INTO words VALUES (?)", rows)
        db.commit()
    if pack is not None:
        pack.close()


if __name__ == "__main__":
    main()
