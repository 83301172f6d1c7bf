"""Tokens reach documents written before them: each migration adds them to what the
index already holds (and takes them out again, going back). Searches run on the latest
schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crmail.linking.models import Link
from crmail.mail.models import Message, Thread
from crmail.mailboxes import conversations
from crmail.mailboxes.models import Conversation, Location
from crmail.search.index import index_messages
from crmail.search.queries import Filters, search_messages
from crmail.search.query import parse
from crmail.sharing.tests import build
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("search", "0002_vocabulary")]
AFTER = [("search", "0003_date_tokens")]
TOKENS = [("search", "0004_attachment_and_bucket_tokens")]
PAIRS = [("search", "0005_word_pairs")]
STATISTICS = [("search", "0006_lexeme_statistics")]
SHORT_PAIRS = [("search", "0007_pairs_with_one_short_word")]
LATEST = [("search", "0008_tokens_column")]
REDATED = [("search", "0009_mail_dated_ahead")]


def _migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


def _old_document(message: Message, dates: str = "") -> None:
    """The document as the release before the date tokens wrote it (with ``dates``: as
    the release before the attachment and bucket tokens did)."""
    with connection.cursor() as cursor:
        table, key = (
            ("search_fts", "rowid")
            if connection.vendor == "sqlite"
            else (
                "search_document",
                "message_id",
            )
        )
        cursor.execute(f"DELETE FROM {table} WHERE {key} = %s", [message.pk])
        if connection.vendor == "sqlite":
            columns, values = ("", "") if not dates else (", dates", ", %s")
            cursor.execute(
                "INSERT INTO search_fts (rowid, subject, sender, recipients, body, attachments"
                f"{columns}) VALUES (%s, 'quarterly plan', '', '', 'the budget', ''{values})",
                [message.pk, *([dates] if dates else [])],
            )
        else:
            cursor.execute(
                "INSERT INTO search_document (message_id, document)"
                " VALUES (%s, to_tsvector('simple', 'quarterly plan the budget')"
                " || array_to_tsvector(string_to_array(%s, ' ')))",
                [message.pk, dates],
            )


def _lexemes(message: Message) -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT * FROM search_fts WHERE rowid = %s", [message.pk])
            names = [column[0] for column in cursor.description]
            row = dict(zip(names, cursor.fetchone(), strict=True))
            assert row["body"] == "the budget"  # the words stay, both ways
            return set((row.get("dates") or "").split())
        # From 0008 on, the lexemes of its own are in a column of their own.
        found = set()
        for column in _columns():
            cursor.execute(
                f"SELECT lexeme FROM search_document, unnest({column}) WHERE message_id = %s",
                [message.pk],
            )
            found |= {row[0] for row in cursor.fetchall()}
        return found - {"quarterly", "plan", "the", "budget"}


def _columns() -> list[str]:
    """PostgreSQL: the tsvector columns of ``search_document``."""
    return list(_storage())


def _storage() -> dict[str, str]:
    """PostgreSQL: the tsvector columns of ``search_document`` and how each is stored
    (``x``: compressed, then moved to TOAST; ``m``: kept in the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstorage FROM pg_attribute"
            " WHERE attrelid = 'search_document'::regclass"
            " AND atttypid = 'tsvector'::regtype AND NOT attisdropped ORDER BY attnum"
        )
        return {row[0]: row[1] for row in cursor.fetchall()}


def test_documents_indexed_before_the_date_tokens_are_found_by_date():
    org = f.org()
    message = build.message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    Message.objects.filter(pk=message.pk).update(date=datetime(2025, 11, 20, 9, 30, tzinfo=UTC))
    _migrate(BEFORE)
    try:
        _old_document(message)
        _migrate(AFTER)
        assert _lexemes(message) == {"_y2025", "_m202511"}
        _migrate(LATEST)
        hits = search_messages(
            org.rep, parse("budget after:2025-11-01 before:2025-12-01"), Filters()
        ).hits
        assert [h.message.pk for h in hits] == [message.pk]
        _migrate(BEFORE)
        assert _lexemes(message) == set()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_documents_indexed_before_the_attachment_and_bucket_tokens_gain_them():
    # PostgreSQL: the attachment token, the id's buckets and the words a prefix may be
    # the start of. SQLite: nothing changes (FTS5 needs none of them).
    org = f.org()
    message = build.message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    Message.objects.filter(pk=message.pk).update(
        date=datetime(2025, 11, 20, 9, 30, tzinfo=UTC), has_attachments=True
    )
    _migrate(AFTER)
    try:
        _old_document(message, "_y2025 _m202511")
        _migrate(LATEST)
        tokens = {"_y2025", "_m202511"}
        if connection.vendor == "postgresql":
            tokens |= {"_a", f"_b{message.pk // 10000}", f"_c{message.pk // 100000}"}
            tokens |= {"_plan the"}  # two short words next to each other (0005)
            tokens |= {"_quarterly plan", "_the budget"}  # one short word (0007)
        assert _lexemes(message) == tokens
        for text in ("budget has:attachment", "quarterly budg", "budget after:2025-11-01"):
            hits = search_messages(org.rep, parse(text), Filters()).hits
            assert [h.message.pk for h in hits] == [message.pk], text
        assert search_messages(org.rep, parse("budget"), Filters(has_attachment=False)).hits == []
        _migrate(AFTER)
        assert _lexemes(message) == {"_y2025", "_m202511"}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_documents_indexed_before_the_word_pairs_gain_them():
    # PostgreSQL: two short words next to each other, read from the positions the
    # document holds. SQLite: nothing changes.
    org = f.org()
    message = build.message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    _migrate(TOKENS)
    try:
        _old_document(message)
        before = _lexemes(message)
        _migrate(PAIRS)
        postgresql = connection.vendor == "postgresql"
        assert _lexemes(message) == before | ({"_plan the"} if postgresql else set())
        _migrate(LATEST)  # searches run on the latest schema
        # PostgreSQL's <-> runs on from one field to the next (the subject, then the body
        # here); FTS5 keeps a phrase within a column.
        phrase = '"plan the budget"' if postgresql else '"the budget"'
        hits = search_messages(org.rep, parse(phrase), Filters()).hits
        assert [h.message.pk for h in hits] == [message.pk]
        assert search_messages(org.rep, parse('"the plan"'), Filters()).hits == []
        _migrate(TOKENS)
        assert _lexemes(message) == before
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_documents_indexed_before_pairs_with_one_short_word_gain_them():
    # "quarterly plan the budget": "plan the" was a pair (two short words); "quarterly
    # plan" and "the budget" become pairs too, and go again going back.
    org = f.org()
    message = build.message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    _migrate(TOKENS)
    try:
        _old_document(message)
        _migrate(PAIRS)
        before = _lexemes(message)
        assert "_plan the" in before
        _migrate(LATEST)
        assert _lexemes(message) == before | {"_quarterly plan", "_the budget"}
        hits = search_messages(org.rep, parse('"the budget"'), Filters()).hits
        assert [h.message.pk for h in hits] == [message.pk]
        _migrate(STATISTICS)
        assert _lexemes(message) == before
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_keeps_statistics_of_ten_thousand_lexemes_and_gives_them_back():
    # The slices a search reads first are sized from them (decision 049).
    def target() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attstattarget FROM pg_attribute WHERE attrelid ="
                " 'search_document'::regclass AND attname = 'document'"
            )
            return int(cursor.fetchone()[0])

    assert target() == 1000
    try:
        _migrate(PAIRS)
        assert target() == -1
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert target() == 1000


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_documents_indexed_before_the_tokens_column_have_their_tokens_moved_to_it():
    # Every lexeme starting with "_" (dates, attachment, buckets, pairs) moves from the
    # ranked document to ``extra`` (decision 051); the words and their positions stay.
    # Going back, they return to the document and the column goes.
    org = f.org()
    message = build.message("jane@customer.test", [org.rep.email], in_mailboxes=[org.rep])
    Message.objects.filter(pk=message.pk).update(
        date=datetime(2025, 11, 20, 9, 30, tzinfo=UTC), has_attachments=True
    )
    tokens = {"_y2025", "_m202511", "_a", f"_b{message.pk // 10000}", f"_c{message.pk // 100000}"}
    tokens |= {"_quarterly plan", "_plan the", "_the budget"}
    _migrate(SHORT_PAIRS)
    try:
        _old_document(message)
        with connection.cursor() as cursor:  # as the release before 0008 wrote it
            cursor.execute(
                "UPDATE search_document SET document = document || array_to_tsvector(%s)"
                " WHERE message_id = %s",
                [sorted(tokens), message.pk],
            )
        assert _columns() == ["document"]
        _migrate(LATEST)
        assert _storage() == {"document": "m", "extra": "m"}
        assert _lexemes(message) == tokens
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT document = to_tsvector('simple', 'quarterly plan the budget'),"
                " extra = array_to_tsvector(%s) FROM search_document WHERE message_id = %s",
                [sorted(tokens), message.pk],
            )
            assert cursor.fetchone() == (True, True)
        for text in ('"the budget"', "budget has:attachment", "quarterly budg after:2025-11-01"):
            hits = search_messages(org.rep, parse(text), Filters()).hits
            assert [h.message.pk for h in hits] == [message.pk], text
        assert search_messages(org.rep, parse("budget"), Filters(has_attachment=False)).hits == []
        assert search_messages(org.rep, parse('"budget the"'), Filters()).hits == []
        _migrate(SHORT_PAIRS)
        assert _storage() == {"document": "x"}
        assert _lexemes(message) == tokens
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT document = to_tsvector('simple', 'quarterly plan the budget')"
                " || array_to_tsvector(%s) FROM search_document WHERE message_id = %s",
                [sorted(tokens), message.pk],
            )
            assert cursor.fetchone() == (True,)
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_mail_stored_dated_years_ahead_is_dated_when_first_seen_and_leaves_the_top():
    # As the release before the rule stored it: a spam's Date of 2028 copied into its
    # locations, its link, its thread, its conversation and its search document.
    org = f.org()
    jane = f.contact(org.rep, "jane@customer.test")
    ahead, older, newer = (
        build.message("jane@customer.test", [org.rep.email], on=[jane], in_mailboxes=[org.rep])
        for _ in range(3)
    )
    ahead_date = datetime(2028, 10, 4, 16, 5, tzinfo=UTC)
    newer_date = newer.first_seen_at + timedelta(hours=3)  # a clock a little fast: kept
    thread = Thread.objects.create(subject="plan", last_message_at=ahead_date)
    for message, moment in ((ahead, ahead_date), (older, older.date), (newer, newer_date)):
        Message.objects.filter(pk=message.pk).update(date=moment, sent_at=moment, thread=thread)
        Location.objects.filter(message=message).update(date=moment, thread=thread)
        Link.objects.filter(message=message).update(date=moment)
    conversations.rebuild()
    index_messages([ahead.pk, older.pk, newer.pk])
    newest = Conversation.objects.get()
    assert newest.location_id == Location.objects.get(message=ahead).pk
    _migrate(LATEST)
    try:
        _migrate(REDATED)
        ahead.refresh_from_db()
        seen = ahead.first_seen_at
        assert (ahead.date, ahead.sent_at) == (seen, ahead_date)
        assert Location.objects.get(message=ahead).date == seen
        assert Link.objects.get(message=ahead).date == seen
        assert Message.objects.get(pk=newer.pk).date == newer_date
        assert Thread.objects.get(pk=thread.pk).last_message_at == newer_date
        newest = Conversation.objects.get()
        assert (newest.location_id, newest.date) == (
            Location.objects.get(message=newer).pk,
            newer_date,
        )
        # Jane's timeline, newest first: the message dated 2028 no longer heads it.
        timeline = Link.objects.filter(module=jane.MODULE, record_id=jane.pk).order_by("-date")
        assert [link.message_id for link in timeline] == [newer.pk, ahead.pk, older.pk]
        found = search_messages(org.rep, parse(f"{ahead.subject} after:2028-01-01"), Filters())
        assert found.hits == []
        year = f"after:{seen.year}-01-01 before:{seen.year + 1}-01-01"
        found = search_messages(org.rep, parse(f"{ahead.subject} {year}"), Filters())
        assert [h.message.pk for h in found.hits] == [ahead.pk]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
