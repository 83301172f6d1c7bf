"""What each step of crmail's ingest costs on the benchmark corpora, without the network.

    python bench/parse_costs.py [--mixed 4000] [--real auto] [--batch 500]

Per corpus, single-threaded, in seconds: SHA-256, zstd at crmail's level (``pack``), the stdlib
parser alone (``policy.default`` and ``compat32``), crmail's ``parse_message`` (fast path,
full parser where needed; how many messages took the fast path), ``parse_full`` (the stdlib
parser for every message, as before the fast path), the base64 decoding of attachments
done only to learn their size (none left on the fast path), and the parse spread over two
processes; then, on a fresh SQLite database, saving the parsed fields of one batch with
Django's ``bulk_update`` against one ``executemany`` UPDATE (what ``save_parsed`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from email import policy
from email.message import Message as EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from benchenv import setup_crmail

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import mixed_messages, real_messages


def clock(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _parse_one(raw: bytes) -> int:
    from crmail.mail.parse import parse_message

    return len(parse_message(raw).attachments)


def _full_or_none(raw: bytes) -> object:
    from crmail.mail import parse

    try:
        return parse.parse_full(raw)
    except parse.Unparseable:
        return None


def parse_costs(name: str, messages: list[bytes]) -> dict[str, float]:
    import zstandard

    from crmail.mail import parse
    from crmail.mail.store import ZSTD_LEVEL

    zc = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    out = {
        "sha256": clock(lambda: [hashlib.sha256(m).digest() for m in messages]),
        f"zstd-{ZSTD_LEVEL} compress": clock(lambda: [zc.compress(m) for m in messages]),
        "BytesParser(policy.default)": clock(
            lambda: [BytesParser(policy=policy.default).parsebytes(m) for m in messages]
        ),
        "BytesParser(compat32)": clock(
            lambda: [BytesParser(policy=policy.compat32).parsebytes(m) for m in messages]
        ),
        "BytesParser headers only": clock(
            lambda: [BytesParser(policy=policy.default).parsebytes(m, True) for m in messages]
        ),
    }
    decode_time = 0.0
    original = EmailMessage.get_payload

    def timed_get_payload(self: EmailMessage, *a: Any, **k: Any) -> Any:
        nonlocal decode_time
        if not (k.get("decode") and self.get_content_maintype() != "text"):
            return original(self, *a, **k)
        start = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            decode_time += time.perf_counter() - start

    out["parse_message"] = clock(lambda: [parse.parse_message(m) for m in messages])
    out["parse_full (stdlib parser for every message)"] = clock(
        lambda: [_full_or_none(m) for m in messages]
    )
    fast = 0
    for m in messages:
        try:
            parse._fast_parse(m)
            fast += 1
        except parse._NeedsFullParser:
            pass
    EmailMessage.get_payload = timed_get_payload  # type: ignore[method-assign]
    try:
        clock(lambda: [parse.parse_message(m) for m in messages])
    finally:
        EmailMessage.get_payload = original  # type: ignore[method-assign]
    out["  of which: decoding non-text parts for their size"] = decode_time
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_parse_one, messages[:20]))  # start the workers
        out["parse_message, 2 processes"] = clock(
            lambda: list(pool.map(_parse_one, messages, chunksize=64))
        )
    print(f"\n{name}: {len(messages):,} messages, {sum(map(len, messages)) / 1e6:.0f} MB")
    print(f"  fast path taken by {fast:,} of {len(messages):,} messages")
    for key, value in out.items():
        print(f"  {key:<52} {value:7.2f} s")
    return out


def update_costs(messages: list[bytes], batch: int) -> dict[str, float]:
    """Saving one batch's parsed fields: Django bulk_update vs one executemany."""
    from django.db import transaction

    from crmail.mail.ingest import PARSED_FIELDS as UPDATE_FIELDS
    from crmail.mail.ingest import _fill, _save_parsed_fields
    from crmail.mail.models import Message, Thread
    from crmail.mail.parse import parse_message
    from crmail.mail.store import store_many

    sample = messages[:batch]
    with transaction.atomic():
        rows = store_many(sample)
    thread = Thread.objects.create(subject="bench")
    parsed = [parse_message(r) for r in sample]
    for row, p in zip(rows, parsed, strict=True):
        _fill(row, p)
        row.thread = thread

    def django_way() -> None:
        with transaction.atomic():
            Message.objects.bulk_update(rows, UPDATE_FIELDS, batch_size=500)

    def executemany_way() -> None:
        with transaction.atomic():
            _save_parsed_fields(rows)

    out = {
        f"bulk_update of {len(rows)} rows, 17 fields": clock(django_way),
        f"executemany UPDATE of {len(rows)} rows": clock(executemany_way),
    }
    for key, value in out.items():
        print(f"  {key:<52} {value:7.3f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixed", type=int, default=4000)
    parser.add_argument("--real", default="auto")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    setup_crmail("parse-costs")
    corpora = []
    if args.mixed:
        corpora.append(("mixed", mixed_messages(args.mixed)))
    if args.real != "none":
        corpora.append(("real", real_messages(args.real)[0]))
    for name, messages in corpora:
        parse_costs(name, messages)
        update_costs(messages, args.batch)


if __name__ == "__main__":
    main()
