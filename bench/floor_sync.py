"""The floor of a first IMAP sync in Python on this machine: what any client that keeps mail
must do, done as plainly as possible, in a process of its own. Prints JSON on stdout.

One connection (the standard library's ``imaplib``), the folder's UIDs, then ``UID FETCH``
of 500 messages a command; for each message its SHA-256 and crmail's own header-only
parse (``parse.parse_headers``); per batch the raw bytes appended once to one file and
fsynced, and one row per message (hash, UID, subject, sender, date, Message-ID) written to
SQLite in WAL mode with one ``executemany`` and a commit. No compression, no threads, no
framework, no indexes but the primary key: the issue 12 estimate of what the goal rests
on. ``sync_bench.py --floor`` runs it in each round beside mbsync and crmail.
"""

from __future__ import annotations

import argparse
import hashlib
import imaplib
import json
import os
import re
import sqlite3
import time
from pathlib import Path

from crmail.mail.parse import Unparseable, parse_headers

BATCH = 500
_LITERAL_UID = re.compile(rb"UID (\d+)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login", required=True)
    parser.add_argument("--password-env", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    args.dir.mkdir(parents=True, exist_ok=True)
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
                pack.write(raw)
            pack.flush()
            os.fsync(pack.fileno())
            db.executemany("INSERT OR IGNORE INTO message VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()
            stored += len(rows)
    imap.logout()
    print(json.dumps({"messages": stored, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
