"""Parsing beside the fetch: worker processes parse, this process saves, nothing is lost.

A message is ``pending`` from the moment it is stored until its parse results commit: an
interrupted pipeline leaves it so, and ``parse_pending`` (run by every sync) finishes it.
Workers read header fields and participants only; such a message is ``processing`` until
``process_bodies`` (the ``bodies`` consumer, right after the sync) saves its body text.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmail.events.models import Event
from crmail.mail.ingest import ParsePipeline, parse_pending, parse_stored, process_bodies
from crmail.mail.models import Message, ParseState, Thread
from crmail.mail.store import prepare, store_many
from crmail.mail.tests.test_store import mail
from crmail.mailboxes import sync as sync_module
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.models import Conversation, Location
from crmail.mailboxes.sync import sync_mailbox
from crmail.web.templatetags.crmail_web import snippet_of
from tests import factories as f

pytestmark = pytest.mark.django_db
CORPUS = sorted((Path(__file__).parents[3] / "tests" / "data" / "cpython_email").glob("msg_*.txt"))


def batches(count: int, size: int) -> list[list[bytes]]:
    raws = [
        mail(f"p{n}@x", f"Re: Topic {n % 3}", reply_to=f"p{n - 1}@x" if n % 3 else "")
        for n in range(count)
    ]
    return [raws[i : i + size] for i in range(0, count, size)]


def submit(pipeline: ParsePipeline, raws: list[bytes]) -> None:
    """Store ``raws`` as the sync does and hand them to ``pipeline`` in their stored form."""
    prepared = prepare(raws)
    messages = store_many(prepared)
    pipeline.submit(messages, [prepared.form_of(i) for i in range(len(raws))])


def states() -> dict[str, int]:
    return {s: Message.objects.filter(parse_state=s).count() for s in ParseState.values}


def test_worker_processes_parse_and_every_batch_is_saved():
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        for raws in batches(12, 5):
            submit(pipeline, raws)
    assert pipeline.saved == 12
    # Listed, threaded and with its participants; the body follows.
    assert states()[ParseState.PROCESSING] == 12
    message = Message.objects.get(message_id="p4@x")
    assert (message.subject, message.body_text, message.snippet) == ("Re: Topic 1", "", "")
    assert message.from_address == "ada@example.com" and message.sent_at is not None
    assert message.thread_id == Message.objects.get(message_id="p3@x").thread_id
    assert list(message.participants.values_list("role", "address")) == [
        ("from", "ada@example.com"),
        ("to", "bob@example.org"),
    ]
    assert process_bodies(list(Message.objects.values_list("pk", flat=True))) == 12
    assert states()[ParseState.PARSED] == 12
    message.refresh_from_db()
    assert message.body_text.strip() and message.snippet
    assert message.thread_id == Message.objects.get(message_id="p3@x").thread_id
    # A second time (an event handed out again after a crash) changes nothing.
    assert process_bodies([message.pk]) == 0


def test_starting_the_workers_starts_their_processes_before_the_first_batch():
    # A process pool starts its processes at its first task: the first batch of a first
    # sync would wait for them to start and load the parser.
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        assert len(pipeline._pool._processes) == 1  # type: ignore[union-attr]
        submit(pipeline, batches(2, 2)[0])
    assert states()[ParseState.PROCESSING] == 2


def test_bodies_are_what_parsing_the_message_whole_saves():
    raws = [path.read_bytes() for path in CORPUS]
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, raws)
    process_bodies(list(Message.objects.values_list("pk", flat=True)))
    assert_saved_as_parsing_here_saves()


def test_problems_in_the_header_fields_and_in_the_bodies_are_both_kept():
    # The sync saves what went wrong reading the header fields; the bodies, read alone
    # after it, add theirs.
    raw = (
        b"From: ada@example.com\r\nDate: the day after tomorrow\r\nSubject: s\r\n"
        b"Message-ID: <bad@x>\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n"
        b"\r\nhello\r\n"
    )
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, [raw])
    assert Message.objects.get().parse_problems == "header date: unreadable"
    process_bodies(list(Message.objects.values_list("pk", flat=True)))
    message = Message.objects.get()
    assert message.parse_state == ParseState.PARTIAL
    assert message.parse_problems.splitlines() == [
        "header date: unreadable",
        "text part: LookupError, decoded with fallback",
    ]
    assert_saved_as_parsing_here_saves()


WHOLE_FIELDS = ("parse_state", "subject", "from_address", "date", "snippet", "body_text")
WHOLE_FIELDS += ("has_html", "has_attachments", "message_id", "parse_problems", "references")


def assert_saved_as_parsing_here_saves() -> None:
    """What is saved of every message (fields and attachments) is what parsing its stored
    bytes whole again in this process saves."""

    def saved() -> tuple[dict[int, dict], list[tuple]]:
        fields = {m["pk"]: m for m in Message.objects.values("pk", *WHOLE_FIELDS)}
        attachments = Message.objects.values_list("pk", "attachments__filename")
        return fields, sorted(attachments, key=str)

    before = saved()
    parse_stored(list(Message.objects.all()))
    assert saved() == before


HTML_ONLY = (
    b"From: ada@example.com\r\nTo: bob@example.org\r\nSubject: Offer\r\n"
    b"Message-ID: <h1@x>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"\r\n<html><body><p>Our <b>spring</b>\r\n offer</p><script>alert(1)</script></body></html>\r\n"
)


@pytest.mark.parametrize("workers", [1, 0])
def test_html_mail_is_saved_as_its_text_whoever_parsed_it(workers):
    # The worker turns the HTML into text; what is saved is what parsing the stored
    # message again in this process saves.
    with ParsePipeline(workers=workers) as pipeline:
        pipeline.start()
        submit(pipeline, [HTML_ONLY])
    process_bodies(list(Message.objects.values_list("pk", flat=True)))
    message = Message.objects.get(message_id="h1@x")
    assert message.has_html
    assert message.snippet == "Our spring offer"
    assert "<" not in message.body_text and "alert" not in message.body_text
    saved = (message.body_text, message.snippet)
    parse_stored([message])
    message.refresh_from_db()
    assert (message.body_text, message.snippet) == saved
    assert message.participants.count() == 2


def test_unreadable_and_odd_mail_is_flagged_not_lost_in_workers():
    raws = [path.read_bytes() for path in CORPUS]
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, raws)
    assert states()[ParseState.PENDING] == 0
    assert Message.objects.count() == len({bytes(r) for r in raws})


def test_the_same_content_twice_in_a_batch_is_parsed_once():
    raws = [mail("twice@x"), mail("twice@x"), mail("once@x")]
    with ParsePipeline(workers=0) as pipeline:
        submit(pipeline, raws)
    assert pipeline.saved == 2


def test_an_interrupted_pipeline_leaves_messages_pending_for_parse_pending():
    [raws] = batches(4, 4)
    with pytest.raises(KeyboardInterrupt), ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, raws)
        raise KeyboardInterrupt  # the process is told to stop before results are saved
    assert states()[ParseState.PENDING] == 4
    assert parse_pending() == 4
    assert states()[ParseState.PARSED] == 4


def test_a_failed_sync_still_saves_what_was_stored():
    [raws] = batches(3, 3)
    with pytest.raises(RuntimeError), ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, raws)
        raise RuntimeError("the server went away")
    assert states()[ParseState.PROCESSING] == 3


def test_a_killed_worker_does_not_lose_its_batch():
    first, second = batches(8, 4)
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, first)
        for pid in list(pipeline._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        submit(pipeline, second)
    assert states()[ParseState.PARSED] == 8


def test_a_first_sync_with_parsing_workers_parses_everything(
    dovecot, dovecot_user, monkeypatch, django_capture_on_commit_callbacks
):
    user, password = dovecot_user
    for n in range(9):
        dovecot.deliver(user, mail(f"s{n}@x", f"Sync {n}"))
    for path in CORPUS[:6]:
        dovecot.deliver(user, path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    monkeypatch.setattr(sync_module, "PIPELINE_MIN_MESSAGES", 1)
    monkeypatch.setattr(sync_module, "BATCH_MESSAGES", 4)
    with django_capture_on_commit_callbacks() as after_commit:
        report = sync(f.mailbox(dovecot, user, password))
    assert report.fetched == 15
    assert Location.objects.count() == 15
    # When the sync returns: every message listed, threaded, its body processing.
    assert states()[ParseState.PENDING] == 0
    assert states()[ParseState.PROCESSING] == 15
    listed = Message.objects.get(message_id="s3@x")
    assert (listed.subject, listed.from_address) == ("Sync 3", "ada@example.com")
    assert listed.snippet == ""
    assert listed.thread_id is not None and listed.participants.count() == 2
    assert snippet_of(listed) == "Processing…"
    for callback in after_commit:  # the job queue's consumers, as a worker runs them
        callback()
    assert states()[ParseState.PENDING] + states()[ParseState.PROCESSING] == 0
    listed.refresh_from_db()
    assert listed.snippet and snippet_of(listed) == listed.snippet
    assert Event.objects.filter(kind="message.processed").count() == 15


def test_a_first_sync_stores_each_message_in_its_conversation_with_its_header_fields(
    dovecot, dovecot_user, monkeypatch
):
    user, password = dovecot_user
    dovecot.deliver(user, mail("root@x", "Pricing", date="Mon, 02 Nov 2026 09:00:00 +0000"))
    for n in range(5):
        dovecot.deliver(user, mail(f"other{n}@x", f"Other {n}"))
    late = "Tue, 03 Nov 2026 16:30:00 +0000"
    dovecot.deliver(user, mail("reply@x", "Re: Pricing", reply_to="root@x", date=late))
    monkeypatch.setattr(sync_module, "PIPELINE_MIN_MESSAGES", 1)
    monkeypatch.setattr(sync_module, "BATCH_MESSAGES", 2)  # the reply in a later batch
    sync(f.mailbox(dovecot, user, password))
    root, reply = (
        Message.objects.get(message_id="root@x"),
        Message.objects.get(message_id="reply@x"),
    )
    assert root.thread_id == reply.thread_id and root.parse_state == ParseState.PROCESSING
    assert reply.thread.last_message_at == reply.date == datetime(2026, 11, 3, 16, 30, tzinfo=UTC)
    # The inbox lists each message where and when it belongs as soon as the sync returns.
    for location in Location.objects.select_related("message"):
        assert (location.thread_id, location.date) == (
            location.message.thread_id,
            location.message.date,
        )
    threads = set(Message.objects.values_list("thread_id", flat=True))
    assert Conversation.objects.count() == len(threads) == 6
    assert Thread.objects.count() == 6  # none started for nothing
    newest = Conversation.objects.get(key=root.thread_id)
    assert (newest.messages, newest.date) == (2, reply.date)


def test_a_batch_whose_header_fields_could_not_be_read_is_stored_and_parsed_after(
    dovecot, dovecot_user, monkeypatch, caplog
):
    user, password = dovecot_user
    for n in range(4):
        dovecot.deliver(user, mail(f"kept{n}@x", f"Kept {n}"))

    def failed(self, raws):  # as when the worker reading them dies
        future = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future

    monkeypatch.setattr(ParsePipeline, "read_headers", failed)
    monkeypatch.setattr(sync_module, "PIPELINE_MIN_MESSAGES", 1)
    assert sync(f.mailbox(dovecot, user, password)).fetched == 4
    assert states()[ParseState.PENDING] == 0
    assert set(Message.objects.values_list("subject", flat=True)) == {f"Kept {n}" for n in range(4)}
    assert "Reading header fields failed" in caplog.text


def sync(mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def test_a_sync_parses_what_an_earlier_run_left_pending(dovecot, dovecot_user):
    user, password = dovecot_user
    for n in range(3):
        dovecot.deliver(user, mail(f"left{n}@x"))
    mailbox = f.mailbox(dovecot, user, password)
    sync(mailbox)
    # As if the process had died between storing and saving the parse results.
    Message.objects.update(parse_state=ParseState.PENDING, subject="")
    assert sync(mailbox).fetched == 0
    assert Message.objects.filter(subject="Hello", parse_state=ParseState.PARSED).count() == 3


def test_a_body_that_decodes_to_nul_is_saved_on_every_database():
    """Its raw bytes hold no NUL, its quoted-printable text does: PostgreSQL refused the
    body, and the message showed "processing" for good."""
    from crmail.mail.tests.test_parse import DECODED_NUL

    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, [DECODED_NUL, mail("plain@x")])
    assert process_bodies(list(Message.objects.values_list("pk", flat=True))) == 2
    message = Message.objects.get(message_id="n@example.com")
    assert message.parse_state == ParseState.PARSED
    assert "textbody" in message.body_text and message.subject == "hithere"
    assert message.attachments.get().filename == "a.pdf"


def test_a_message_whose_bytes_are_missing_does_not_hold_up_the_other_bodies(caplog):
    from crmail.blobs.models import Blob

    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, [mail("kept@x"), mail("lost@x")])
    lost = Message.objects.get(message_id="lost@x")
    Blob.objects.filter(sha256=lost.sha256).delete()  # as if its pack were gone
    assert process_bodies(list(Message.objects.values_list("pk", flat=True))) == 1
    assert Message.objects.get(message_id="kept@x").parse_state == ParseState.PARSED
    lost.refresh_from_db()
    assert lost.parse_state == ParseState.PROCESSING and lost.subject == "Hello"
    assert f"message {lost.pk}: its bytes are missing" in caplog.text


def _processing(count: int) -> list[int]:
    """``count`` messages stored by a first sync's pipeline, their bodies still to parse:
    the corpus's odd mail first, then replies with bodies of their own."""
    raws = [path.read_bytes() for path in CORPUS]
    raws += [
        mail(f"w{n}@x", f"Re: Topic {n % 7}", body=f"line {n} of a reply\r\n" * (n % 40 + 1))
        for n in range(count - len(raws))
    ]
    with ParsePipeline(workers=1) as pipeline:
        pipeline.start()
        submit(pipeline, raws)
    return list(Message.objects.values_list("pk", flat=True))


def test_a_large_batch_of_bodies_is_parsed_by_workers_and_saved_as_parsed_here(monkeypatch):
    from crmail.mail import ingest

    ids = _processing(ingest.BODY_WORKERS_FROM + 40)
    here = []
    original = ingest._digest_here
    monkeypatch.setattr(ingest, "_digest_here", lambda rows: here.extend(rows) or original(rows))
    assert process_bodies(ids) == len(ids)
    assert here == []  # the workers took every share; this process only wrote
    assert_saved_as_parsing_here_saves()


def test_the_next_batchs_bodies_are_parsed_ahead_and_taken_by_it(monkeypatch):
    """While a batch of bodies is written, the workers parse the next one; that batch
    takes what they found and hands nothing over again, and what is saved is what a
    parse here saves."""
    from crmail.mail import ingest

    ids = _processing(2 * ingest.BODY_WORKERS_FROM + 20)
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    handed: list[int] = []
    original = ingest._submit

    def submit(rows):  # type: ignore[no-untyped-def]
        shares = original(rows)
        handed.extend(r.pk for share in shares for r in share.rows)
        return shares

    monkeypatch.setattr(ingest, "_submit", submit)
    assert ingest.save_bodies(*ingest.digest_bodies(first, ahead=second)) == len(first)
    assert sorted(handed) == sorted(ids)  # this batch's, then the next one's
    assert ingest.save_bodies(*ingest.digest_bodies(second)) == len(second)
    assert sorted(handed) == sorted(ids)  # nothing handed over twice
    assert not ingest._ahead  # taken, not kept
    assert_saved_as_parsing_here_saves()


def test_bodies_started_ahead_for_messages_no_longer_waiting_change_nothing():
    """What was started ahead is a hint: a message parsed meanwhile by someone else is not
    written again, and a batch that never comes leaves nothing behind."""
    from crmail.mail import ingest

    ids = _processing(2 * ingest.BODY_WORKERS_FROM + 20)
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    rows, outcomes = ingest.digest_bodies(first, ahead=second)
    assert process_bodies(second) == len(second)  # another dispatcher took them
    assert ingest.save_bodies(rows, outcomes) == len(first)
    assert ingest.digest_bodies(second) == ([], [])
    ingest.digest_bodies([], ahead=[])
    assert not ingest._ahead
    assert Event.objects.filter(kind="message.processed").count() == len(ids)
    assert_saved_as_parsing_here_saves()


def test_a_worker_that_cannot_read_the_store_leaves_its_share_to_this_process(settings, caplog):
    from crmail.blobs import store as blob_store
    from crmail.mail import ingest

    ids = _processing(ingest.BODY_WORKERS_FROM + 10)
    blob_store.backend()  # this process keeps the store it opened
    settings.BLOB_URL = "file:/nonexistent/crmail-blobs"  # what the workers are told
    assert process_bodies(ids) == len(ids)
    assert states()[ParseState.PROCESSING] == 0
    assert "A bodies worker failed" in caplog.text


def _arrived(dovecot, user: str, message_id: str, when: datetime) -> None:
    """Make the message ``message_id`` in ``user``'s INBOX arrive at ``when`` (the
    Maildir file's time is its INTERNALDATE)."""
    path = next(
        p
        for p in (dovecot.user_home(user) / "Maildir").rglob("*")
        if p.is_file() and f"<{message_id}>".encode() in p.read_bytes()
    )
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.mark.parametrize("workers", [False, True], ids=["parsed-here", "parsing-workers"])
def test_mail_without_a_usable_date_is_listed_when_its_server_received_it(
    dovecot, dovecot_user, monkeypatch, workers
):
    """A first sync of an old mailbox: a message with no Date header, or one dated years
    ahead, takes its place by when the server received it, not at the top of the inbox
    as if it had come during the sync."""
    user, password = dovecot_user
    undated = mail("undated@x", "No date").replace(
        b"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n", b""
    )
    dovecot.deliver(user, undated)
    dovecot.deliver(user, mail("ahead@x", "Ahead", date="Wed, 04 Oct 2034 16:05:00 +0000"))
    dovecot.deliver(user, mail("recent@x", "Recent", date="Mon, 02 Nov 2026 10:00:00 +0000"))
    _arrived(dovecot, user, "undated@x", datetime(2020, 3, 1, 8, 0, tzinfo=UTC))
    _arrived(dovecot, user, "ahead@x", datetime(2021, 5, 2, 9, 30, tzinfo=UTC))
    dovecot.doveadm("force-resync", "-u", user, "INBOX")
    if workers:
        monkeypatch.setattr(sync_module, "PIPELINE_MIN_MESSAGES", 1)
    sync(f.mailbox(dovecot, user, password))
    found = {m.message_id: m for m in Message.objects.select_related("thread")}
    assert not found["undated@x"].sent_at
    assert found["undated@x"].date == datetime(2020, 3, 1, 8, 0, tzinfo=UTC)
    assert found["ahead@x"].sent_at == datetime(2034, 10, 4, 16, 5, tzinfo=UTC)
    assert found["ahead@x"].date == datetime(2021, 5, 2, 9, 30, tzinfo=UTC)
    assert found["recent@x"].date == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    # The inbox and the timelines go by it: newest first, the undated one last.
    inbox = Conversation.objects.order_by("-date").values_list("location_id", flat=True)
    listed = [Location.objects.get(pk=pk).message.subject for pk in inbox]
    assert listed == ["Recent", "Ahead", "No date"]
    for location in Location.objects.select_related("message"):
        assert location.date == location.message.date == location.message.thread.last_message_at
