"""PostgreSQL's documents written by crmail (``tsvector.literal``): the same lexemes,
positions and weights as ``to_tsvector('simple', …)`` gives for words its parser cuts as
crmail does, and crmail's own words where it does not."""

from __future__ import annotations

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from crmail.search import index
from crmail.search.tsvector import MOST_POSITIONS, literal
from crmail.search.words import joined

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's tsvector"
)


def server(sql: str, *params: object) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def as_text(vector_sql: str, *params: object) -> str:
    return str(server(f"SELECT ({vector_sql})::text", *params))


# Words PostgreSQL's parser cuts as crmail does: letters alone, digits alone.
plain_words = st.lists(
    st.one_of(
        st.text("abcdefghijklmnopqrstuvwxyzäöüßçé", min_size=1, max_size=12),
        st.text("0123456789", min_size=1, max_size=6),
    ),
    max_size=60,
).map(" ".join)


@postgresql_only
@settings(max_examples=60, deadline=None)
@given(text=plain_words, weight=st.sampled_from("ABCD"))
def test_a_field_is_what_to_tsvector_makes_of_the_same_words(text, weight):
    words = joined([text])
    assert as_text("%s::tsvector", literal(words, weight)) == as_text(
        "setweight(to_tsvector('simple', %s), %s)", words, weight
    )


@postgresql_only
@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_cut_into_words_is_read_back_as_those_words(text):
    words = joined([text])
    found = server("SELECT tsvector_to_array(%s::tsvector)", literal(words, "B"))
    assert sorted(found) == sorted(set(words.split()))


@postgresql_only
def test_positions_past_postgresqls_limits_are_kept_as_it_keeps_them():
    repeated = " ".join(["again"] * (MOST_POSITIONS + 40))
    long = " ".join(f"w{n % 500}" for n in range(16_383 + 600))  # PostgreSQL's last place
    for words in (repeated, long, f"{long} tail tail"):
        assert as_text("%s::tsvector", literal(words)) == as_text(
            "to_tsvector('simple', %s)", words
        )


@postgresql_only
def test_words_postgresqls_parser_cuts_otherwise_are_kept_whole():
    words = joined(["71e31f ᏣᎳᎩ ১৴২ plain"])
    assert server("SELECT tsvector_to_array(%s::tsvector)", literal(words)) == sorted(
        ["71e31f", *joined(["ᏣᎳᎩ"]).split(), "১৴২", "plain"]
    )


def test_a_weight_is_one_of_postgresqls_four():
    assert literal("", "A") == ""
    assert literal("deal deal won", "B") == "'deal':1B,2B 'won':3B"
    assert literal("deal won") == "'deal':1 'won':2"  # D, the default, written without
    with pytest.raises(ValueError, match="weight"):
        literal("deal", "E")


@postgresql_only
def test_a_documents_fields_follow_one_another_as_before(org, django_capture_on_commit_callbacks):
    """The parts of ``document``, joined by ``||``, are what ``to_tsvector`` of each field
    gave (subject A, senders B, recipients C, body and attachment names D), so documents
    written before and after read alike (ranking, phrases across fields)."""
    from crmail.mail.models import Message
    from crmail.search.tests.mail import deliver, raw

    deliver(
        django_capture_on_commit_callbacks,
        raw(
            "Jane Doe <jane@customer.test>",
            "Ann Lee <ann@customer.test>, " + org.rep.email,
            "Proposal for Acme, the renewal",
            "Here is the proposal we discussed. Café at Straße 5; the proposal again.",
            day=1,
            attachment="Pricing-2027.pdf",
        ),
        to=[org.rep],
    )
    (document,) = index._documents(list(Message.objects.values_list("pk", flat=True)))
    _, subject, senders, recipients, body, files, *_, parts = document
    written = as_text(" || ".join(["%s::tsvector"] * len(parts)), *parts)
    assert written == as_text(
        "setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'B')"
        " || setweight(to_tsvector('simple', %s), 'C')"
        " || setweight(to_tsvector('simple', %s || ' ' || %s), 'D')",
        subject,
        senders,
        recipients,
        body,
        files,
    )
    assert "'proposal':1A" in written and "'pricing':" in written
