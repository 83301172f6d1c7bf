"""``crmail search reindex [--mailbox ID]``: the index rebuilt from the stored mail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmail.config.cli import main
from crmail.mail.models import Message
from crmail.mailboxes.models import Location
from crmail.search import index
from crmail.search.queries import search_messages
from crmail.search.query import parse
from crmail.search.tests.mail import START, deliver, raw
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_reindex_brings_back_a_lost_index_and_says_how_much(
    capsys, django_capture_on_commit_callbacks
):
    rep = f.user("rep@crmail.test")
    deliver(
        django_capture_on_commit_callbacks,
        raw("a@x.test", rep.email, "Quarterly review", "numbers"),
        to=[rep],
    )
    table = "search_fts" if index.connection.vendor == "sqlite" else "search_document"
    with index.connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    assert search_messages(rep, parse("quarterly")).count == 0

    assert main(["search", "reindex"]) == 0
    assert "Indexed 1 message." in capsys.readouterr().out
    assert search_messages(rep, parse("quarterly")).count == 1

    box = rep.mailboxes.get()
    assert main(["search", "reindex", "--mailbox", str(box.pk)]) == 0
    assert f"Indexed 1 message of mailbox {box.pk}." in capsys.readouterr().out


def test_an_unknown_mailbox_is_an_error_in_words(capsys):
    assert main(["search", "reindex", "--mailbox", "999"]) == 1
    err = capsys.readouterr().err
    assert "--mailbox: there is no mailbox with id 999." in err and "Traceback" not in err


def test_documents_go_to_the_index_in_message_order_whatever_their_dates():
    """FTS5 starts a new segment whenever a document's id is not above the last one
    written; written in date order, a big store's index was rewritten again and again."""
    rep = f.user("rep@crmail.test")
    ids = [
        deliver(None, raw("a@x.test", rep.email, f"Note {n}", "words"), to=[rep]).pk
        for n in range(5)
    ]
    # Lists of mail put the newest first: here that is the last message stored.
    for n, pk in enumerate(ids):
        Message.objects.filter(pk=pk).update(date=START + timedelta(days=n))
    assert [doc[0] for doc in index._documents(list(reversed(ids)))] == sorted(ids)


def test_a_message_deleted_after_its_words_were_read_gets_no_document(
    django_capture_on_commit_callbacks,
):
    """The index's consumer reads and cuts the words before its batch's transaction: a
    message deleted meanwhile must not come back as a document that finds nothing."""
    rep = f.user("rep@crmail.test")
    gone, kept = (
        deliver(None, raw("a@x.test", rep.email, subject, "words"), to=[rep])
        for subject in ("Quarterly review", "Quarterly plan")
    )
    read = index.read_documents([gone.pk, kept.pk])
    Location.objects.filter(message=gone).delete()  # its last copy gone, then itself
    gone.delete()
    assert index.write_documents(read) == 1
    assert search_messages(rep, parse("quarterly")).count == 1
    table = "search_fts" if index.connection.vendor == "sqlite" else "search_document"
    column = "rowid" if table == "search_fts" else "message_id"
    with index.connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")
        assert [row[0] for row in cursor.fetchall()] == [kept.pk]
