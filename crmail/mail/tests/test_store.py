"""Raw bytes first, one row per content, parse results beside them, threads by reference."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis.strategies import binary as binary_st

from crmail.blobs import packs
from crmail.blobs import store as blob_store
from crmail.blobs.backends import FileBackend
from crmail.blobs.models import Blob, Pack
from crmail.mail.ingest import parse_stored, thread_subject
from crmail.mail.models import Compression, Message, MessageRaw, ParseState
from crmail.mail.parse import parse_full
from crmail.mail.store import (
    _insert_new,
    collect_blobs,
    content_hash,
    header_section,
    prepare,
    raw_bytes,
    raw_bytes_many,
    store_many,
    store_raw,
    unpack,
)

pytestmark = pytest.mark.django_db
CORPUS = sorted((Path(__file__).parents[3] / "tests" / "data" / "cpython_email").glob("msg_*.txt"))


def mail(
    msgid: str,
    subject: str = "Hello",
    *,
    reply_to: str = "",
    refs: str = "",
    date: str = "Mon, 02 Nov 2026 10:00:00 +0000",
    body: str = "text " * 50,
) -> bytes:
    head = f"From: Ada <ada@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
    head += f"Date: {date}\r\nMessage-ID: <{msgid}>\r\n"
    if reply_to:
        head += f"In-Reply-To: <{reply_to}>\r\n"
    if refs:
        head += f"References: {refs}\r\n"
    return (head + "\r\n" + body).encode()


def test_the_same_content_is_stored_once():
    a, b = mail("one@x"), mail("two@x")
    first = store_many([a, b, a])
    assert first[0].pk == first[2].pk != first[1].pk
    again = store_raw(b)
    assert again.pk == first[1].pk
    assert Message.objects.count() == 2


def test_raw_bytes_come_back_exactly_whether_compressed_or_not():
    text = mail("c@x", body="compressible " * 2000)
    noise = mail("n@x", body="") + os.urandom(50_000)
    stored = store_many([text, noise])
    kept = {b.sha256: b for b in Blob.objects.all()}
    assert kept[stored[0].sha256].compression == Compression.ZSTD
    assert kept[stored[0].sha256].length < len(text) / 5
    assert kept[stored[1].sha256].compression == Compression.NONE
    assert not MessageRaw.objects.exists()  # the blob store holds them
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[m.pk for m in stored])}
    assert raw_bytes(rows[stored[0].pk]) == text
    assert raw_bytes(rows[stored[1].pk]) == noise
    assert raw_bytes_many([rows[stored[1].pk], stored[0]]) == [noise, text]


def test_content_stored_meanwhile_by_another_process_is_taken_not_duplicated():
    raw = mail("race@x")
    theirs = store_raw(raw)
    # This process looked before the other one committed: it tries to insert too.
    got = _insert_new({content_hash(raw): len(raw)}, prepare([raw]).forms)
    assert got[content_hash(raw)].pk == theirs.pk
    assert (Message.objects.count(), Blob.objects.count()) == (1, 1)
    # Two packs hold it; the index names one, and collecting removes the other.
    assert collect_blobs().packs == 1
    assert raw_bytes(Message.objects.get()) == raw


def test_a_pack_is_deleted_only_once_the_commit_that_let_it_go_is_on_disk(monkeypatch):
    # SQLite syncs its log only at checkpoints: after a power cut, rows naming a pack
    # whose file is gone would come back (a message that was kept, its bytes lost).
    gone, kept = store_many([mail("gone@x"), mail("kept@x")])
    steps: list[str] = []
    monkeypatch.setattr(blob_store, "sync_commits", lambda: steps.append("synced"))
    delete = FileBackend.delete

    def deleted(self, name):
        steps.append(f"deleted, named by {Pack.objects.filter(name=name).count()} rows")
        delete(self, name)

    monkeypatch.setattr(FileBackend, "delete", deleted)
    Message.objects.filter(pk=gone.pk).delete()
    collect_blobs([gone.sha256])  # written again without it, the old pack deleted
    Message.objects.filter(pk=kept.pk).delete()
    collect_blobs([kept.sha256])  # nothing left in it: deleted
    assert steps == ["synced", "deleted, named by 0 rows"] * 2


def test_parse_results_leave_the_bytes_alone_and_a_deleted_message_leaves_none_behind():
    raw, other = mail("alone@x"), mail("other@x")
    message, kept = store_many([raw, other])
    parse_stored([message])
    assert raw_bytes(Message.objects.get(pk=message.pk)) == raw
    Message.objects.filter(pk=message.pk).delete()
    collect_blobs([message.sha256])
    # The pack is written again without it: its bytes are nowhere on disk.
    assert list(Blob.objects.values_list("sha256", flat=True)) == [kept.sha256]
    on_disk = [
        unpack(data[e.offset : e.offset + e.length], e.compression)
        for data in (p.read_bytes() for p in Path(settings.BLOB_URL[5:]).rglob("*.pack"))
        for e in packs.scan(data)
    ]
    assert raw not in on_disk and other in on_disk
    assert raw_bytes(Message.objects.get(pk=kept.pk)) == other


def test_parsing_fills_fields_and_participants():
    message = store_raw(mail("p@x", subject="Offer"))
    parse_stored([message])
    message.refresh_from_db()
    assert message.parse_state == ParseState.PARSED
    assert (message.subject, message.message_id, message.from_address) == (
        "Offer",
        "p@x",
        "ada@example.com",
    )
    roles = sorted(message.participants.values_list("role", "address"))
    assert roles == [("from", "ada@example.com"), ("to", "bob@example.org")]
    assert message.snippet.startswith("text text")


def test_mail_dated_with_an_offset_past_a_day_is_saved_and_threaded():
    # "-1900" (real spam): PostgreSQL refused the date, and with it the batch's threads.
    message = store_raw(mail("odd@x", date="Sat, 20 Jul 2002 03:34:09 -1900"))
    parse_stored([message])
    message.refresh_from_db()
    assert message.sent_at == datetime(2002, 7, 20, 22, 34, 9, tzinfo=UTC)
    assert message.thread.last_message_at == message.sent_at


def test_mail_dated_years_ahead_is_dated_when_first_seen_not_kept_atop_every_list():
    ahead = store_raw(mail("ahead@x", date="Wed, 04 Oct 2028 16:05:00 +0000"))
    skewed = timezone.now() + timedelta(hours=3)  # a sender's clock a little fast
    close = store_raw(mail("close@x", date=format_datetime(skewed)))
    parse_stored([ahead, close])
    ahead.refresh_from_db()
    close.refresh_from_db()
    assert ahead.sent_at == datetime(2028, 10, 4, 16, 5, tzinfo=UTC)  # the header, kept
    assert ahead.date == ahead.first_seen_at
    assert ahead.thread.last_message_at == ahead.first_seen_at
    assert ahead.parse_state == ParseState.PARSED  # nothing wrong with the message itself
    assert close.date == close.sent_at == skewed.replace(microsecond=0)
    assert list(Message.objects.all()) == [close, ahead]  # newest first, by date


RECEIVED = (
    b"Received: from mx.example.org by mail.crmail.test with ESMTPS id 4f;\r\n"
    b"\tTue, 14 Jan 2025 09:12:44 +0100\r\n"
    b"Received: from [10.0.0.2] by mx.example.org; Mon, 01 Jan 2001 00:00:00 +0000\r\n"
)


def test_mail_without_a_date_from_a_server_that_says_none_is_dated_by_its_delivery():
    """POP3 and a forwarded copy carry no arrival time of the server's own: the topmost
    Received field, which the delivering server wrote, dates the message (the lower ones
    may be anyone's); a Date header, when there is one, still comes first."""
    undated = RECEIVED + mail("undated@x").replace(
        b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n", b""
    )
    dated = RECEIVED + mail("dated@x")
    ahead = RECEIVED + mail("ahead@x", date="Wed, 04 Oct 2034 16:05:00 +0000")
    for raw in (undated, ahead):  # the same on the fast path and the standard library's
        assert parse_full(raw).received == datetime(2025, 1, 14, 8, 12, 44, tzinfo=UTC)
    messages = [store_raw(raw) for raw in (undated, dated, ahead)]
    parse_stored(messages)
    for message in messages:
        message.refresh_from_db()
    assert [m.date for m in messages] == [
        datetime(2025, 1, 14, 8, 12, 44, tzinfo=UTC),
        datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
        datetime(2025, 1, 14, 8, 12, 44, tzinfo=UTC),
    ]
    assert messages[0].sent_at is None and messages[0].parse_state == ParseState.PARSED


def test_parsing_twice_replaces_rather_than_duplicates():
    message = store_raw(mail("twice@x"))
    parse_stored([message])
    parse_stored([message])
    assert message.participants.count() == 2


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_message_is_kept_and_parsed_or_flagged(path):
    raw = path.read_bytes()
    message = store_raw(raw)
    parse_stored([message])
    message.refresh_from_db()
    assert raw_bytes(message) == raw
    assert message.parse_state in (ParseState.PARSED, ParseState.PARTIAL, ParseState.FAILED)
    assert message.date is not None


def test_replies_join_the_thread_in_any_order():
    root = mail("root@x", "Proposal", date="Mon, 02 Nov 2026 10:00:00 +0000")
    reply = mail(
        "r1@x",
        "Re: Proposal",
        reply_to="root@x",
        refs="<root@x>",
        date="Mon, 02 Nov 2026 11:00:00 +0000",
    )
    reply2 = mail(
        "r2@x",
        "RE: Re: Proposal",
        reply_to="r1@x",
        refs="<root@x> <r1@x>",
        date="Mon, 02 Nov 2026 12:00:00 +0000",
    )
    other = mail("other@x", "Unrelated")
    # The replies arrive before the message they answer.
    for batch in ([reply2], [reply], [root, other]):
        parse_stored(store_many(batch))
    threads = dict(Message.objects.values_list("message_id", "thread_id"))
    assert threads["root@x"] == threads["r1@x"] == threads["r2@x"] != threads["other@x"]
    thread = Message.objects.get(message_id="root@x").thread
    assert thread.last_message_at.hour == 12


def test_thread_subject_drops_prefixes():
    assert thread_subject("RE: Fwd: AW: Angebot") == "Angebot"


HAMMER = """
import os, sys, threading
import django
django.setup()
from crmail.mail.store import pack, unpack

blobs = [os.urandom(64) + b"quarterly figures attached " * n for n in range(1, 300)]
failures = []

def work(offset):
    try:
        for round in range(40):
            for raw in blobs[offset::8]:
                stored, compression = pack(raw)
                if unpack(stored, compression) != raw:
                    failures.append("round trip changed the bytes")
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")

threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(failures), failures[:3])
sys.exit(1 if failures else 0)
"""


def test_packing_from_many_threads_at_once_neither_fails_nor_crashes(tmp_path):
    # Job threads and the watcher's sync threads store mail in one process; a shared
    # zstd object failed ("Src size is incorrect") or crashed the whole worker. In a
    # process of its own, so a crash fails this test rather than the run.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crmail.config.settings",
        "CRMAIL_DATA_DIR": str(tmp_path),
        "CRMAIL_QUEUE_URL": "memory://",
    }
    done = subprocess.run(
        [sys.executable, "-c", HAMMER], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])


def test_a_batch_that_dies_between_its_pack_and_its_commit_loses_nothing(monkeypatch):
    # As a kill -9 after the pack is fsynced and before the rows commit: the rows never
    # commit, the pack stays with no row naming it. Storing the batch again (the next
    # sync fetches it again) keeps every byte, and the leftover goes once it is old.
    batch = [mail("crash1@x"), mail("crash2@x", body="compressible " * 500)]

    def dies(written):  # type: ignore[no-untyped-def]
        raise SystemExit("killed")

    monkeypatch.setattr(blob_store, "record", dies)
    with pytest.raises(SystemExit):
        store_many(batch)
    assert not Message.objects.exists() and not Pack.objects.exists()
    root = Path(settings.BLOB_URL.removeprefix("file:"))
    left = {p.stem for p in root.rglob("*.pack")} - set(Pack.objects.values_list("name", flat=True))
    monkeypatch.undo()
    stored = store_many(batch)
    assert (
        raw_bytes_many(list(Message.objects.filter(pk__in=[m.pk for m in stored]).order_by("pk")))
        == batch
    )
    (kept,) = Pack.objects.values_list("name", flat=True)
    assert kept not in left
    # Young, it may be a batch about to commit; old, it is a leftover.
    assert collect_blobs().packs == 0
    for name in left:
        path = root / name[:2] / f"{name}.pack"
        os.utime(path, (0, 0))
    collect_blobs()
    assert not any((root / n[:2] / f"{n}.pack").exists() for n in left)
    assert (root / kept[:2] / f"{kept}.pack").exists()


def _header_section_in_full(raw: bytes, limit: int) -> bytes:
    """The header section as read by searching the whole message: what the bounded
    searches of ``header_section`` must agree with."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if not ends:
        return raw[:limit]
    end = min(ends)
    return raw[: min(end + (4 if raw.startswith(b"\r\n\r\n", end) else 2), limit)]


@settings_hypothesis(max_examples=400, deadline=None)
@given(raw=binary_st(max_size=60).map(lambda b: bytes(b"a\r\n"[x % 3] for x in b)))
def test_the_header_section_is_cut_where_the_first_blank_line_ends(raw):
    import crmail.mail.store as store

    limit = store.HEADERS_LIMIT
    try:
        store.HEADERS_LIMIT = 24  # the limit within reach of the examples
        assert header_section(raw) == _header_section_in_full(raw, 24)
    finally:
        store.HEADERS_LIMIT = limit
