"""The next batch's bodies are cut into words in the worker processes while a batch is
written (``index.cut_ahead``): the documents are the same as words cut here, and a text
that changed since, or a worker that failed, is cut here."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest

from crmail.jobs import worker_process
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.search import index
from crmail.search.tests.mail import raw

pytestmark = pytest.mark.django_db

BODIES = [
    "Quarterly numbers for the Zürich office, ready on Monday.",
    "Straße, café, naïve: the renewal's wording, 日本語 too.",
    "A long token " + "x" * 150 + " and the rest of the line.",
    "Line one\nline two\n\n-- \nAnn Lee, ACME",
]


@pytest.fixture
def ids() -> list[int]:
    messages = [
        store_raw(raw("ann@acme.test", "rep@crmail.test", f"Order {n}", BODIES[n % 4] + f" n{n}"))
        for n in range(index.CUT_AHEAD_FROM + 20)
    ]
    parse_stored(messages)
    return [m.pk for m in messages]


@pytest.fixture
def cut_here(monkeypatch):  # type: ignore[no-untyped-def]
    """The texts this process cut into words (``index.joined``)."""
    texts: list[str] = []
    original = index.joined

    def joined(parts):  # type: ignore[no-untyped-def]
        parts = list(parts)
        texts.extend(parts)
        return original(parts)

    monkeypatch.setattr(index, "joined", joined)
    return texts


def bodies(documents: list[index.Chunk]) -> dict[int, str]:
    return {d[0]: d[4] for _, docs in documents for d in docs}


def test_bodies_cut_ahead_give_the_documents_cut_here_give(ids, cut_here):
    here = index.read_documents(ids)
    cut_here.clear()
    index.cut_ahead(ids)
    assert index.read_documents(ids) == here
    texts = set(Message.objects.values_list("body_text", flat=True))
    assert not texts & set(cut_here)  # no body was cut here the second time
    assert not index._ahead  # taken, not kept


def test_a_body_changed_since_it_was_cut_ahead_is_cut_here_from_its_new_text(ids):
    index.cut_ahead(ids)
    Message.objects.filter(pk=ids[0]).update(body_text="Changed: zebra crossing")
    assert bodies(index.read_documents(ids))[ids[0]] == "changed zebra crossing"


def test_when_a_worker_fails_the_words_are_cut_here(ids, monkeypatch, caplog):
    here = index.read_documents(ids)

    class Broken:
        def submit(self, *args):  # type: ignore[no-untyped-def]
            future: Future[list[str]] = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future

    monkeypatch.setattr(worker_process, "shared_pool", lambda: Broken())
    index.cut_ahead(ids)
    assert index.read_documents(ids) == here
    assert caplog.text.count("cutting words ahead failed") == 1


def test_past_its_size_the_rest_of_a_batch_is_cut_when_it_comes(ids, cut_here, monkeypatch):
    """What is held ahead is bounded: the bodies past ``CUT_AHEAD_CHARS`` are cut here,
    and the documents are the same."""
    here = index.read_documents(ids)
    cut_here.clear()
    monkeypatch.setattr(index, "CUT_AHEAD_CHARS", 2_000)
    index.cut_ahead(ids)
    ahead = set(index._ahead)
    assert 0 < len(ahead) < len(ids)
    assert index.read_documents(ids) == here
    texts = dict(Message.objects.values_list("pk", "body_text"))
    assert {t for t in cut_here if t in texts.values()} == {
        text for pk, text in texts.items() if pk not in ahead
    }


def stored() -> list[tuple]:
    """The index's rows, as the database holds them."""
    from django.db import connection

    sql = (
        "SELECT rowid, subject, sender, recipients, body, attachments, dates FROM search_fts"
        " ORDER BY rowid"
        if connection.vendor == "sqlite"
        else "SELECT message_id, document::text, extra::text FROM search_document"
        " ORDER BY message_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_a_rebuild_cuts_each_next_batch_ahead_and_writes_the_same_documents(
    ids, cut_here, monkeypatch
):
    monkeypatch.setattr(index, "BATCH", 50)  # three batches: 50, 50 and 20 messages
    monkeypatch.setattr(index, "CUT_AHEAD_FROM", 10)
    with monkeypatch.context() as no_workers:
        no_workers.setattr(worker_process, "shared_pool", lambda: None)
        assert index.reindex() == len(ids)
    written_here = stored()
    cut_here.clear()

    assert index.reindex() == len(ids)

    texts = dict(Message.objects.values_list("pk", "body_text"))
    here = {pk for pk, text in texts.items() if text in cut_here}
    assert here == set(sorted(ids)[:50])  # the first batch alone: nothing was cut before it
    assert stored() == written_here
    assert len(written_here) == len(ids)
