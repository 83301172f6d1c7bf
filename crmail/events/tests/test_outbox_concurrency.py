"""Writers' transactions interleave on PostgreSQL: an event whose transaction began first
(and so has the lower id) but commits last is still handed to every consumer."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from crmail.events import dispatch, outbox
from crmail.events.kinds import SyncFinished
from crmail.events.registry import CONSUMERS, Consumer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite runs one writer at a time"
    ),
]


def test_an_event_committed_after_a_later_one_was_handled_is_not_skipped(monkeypatch):
    seen: list[int] = []
    monkeypatch.setitem(
        CONSUMERS,
        "test",
        Consumer(
            name="test",
            kinds=frozenset({"sync.finished"}),
            handler=lambda batch: seen.extend(i.data.mailbox_id for i in batch),
        ),
    )
    dispatch.start_all()
    written = threading.Event()
    release = threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                outbox.record(SyncFinished(mailbox_id=1, owner_id=1, state="completed"))
                written.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert written.wait(10)
    with transaction.atomic():
        outbox.record(SyncFinished(mailbox_id=2, owner_id=1, state="completed"))
    dispatch.dispatch("test")
    assert seen == [2]
    release.set()
    thread.join(10)
    dispatch.dispatch("test")
    assert seen == [2, 1]
