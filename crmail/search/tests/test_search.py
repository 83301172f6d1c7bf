"""Search as a user meets it: operators, filters, ranking, highlights, other scripts,
threads, and never a message the user may not open. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from django.db import connection

from crmail.mail.models import Message
from crmail.mailboxes.models import Folder
from crmail.search import index, queries
from crmail.search.queries import Filters, search_messages
from crmail.search.query import QueryError, parse
from crmail.search.tests.mail import deliver, raw
from crmail.search.words import words
from crmail.sharing import actions
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def rep(org):  # type: ignore[no-untyped-def]
    return org.rep


def found(user, text: str, **filters):  # type: ignore[no-untyped-def]
    results = search_messages(user, parse(text), Filters(**filters), limit=50)
    return [h.message.subject for h in results.hits]


@pytest.fixture
def mails(rep, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    c = django_capture_on_commit_callbacks
    return {
        "proposal": deliver(
            c,
            raw(
                "Jane Doe <jane@customer.test>",
                rep.email,
                "Proposal for Acme",
                "Here is the proposal we discussed.",
                day=1,
                attachment="Pricing-2027.pdf",
            ),
            to=[rep],
        ),
        "lunch": deliver(
            c,
            raw(
                "Bob Stone <bob@other.test>",
                rep.email,
                "Lunch",
                "Shall we have lunch at the café near Straße 5?",
                day=5,
            ),
            to=[rep],
        ),
        "japan": deliver(
            c,
            raw(
                "Kenji <kenji@example.jp>",
                "Ann Lee <ann@customer.test>, " + rep.email,
                "出張",
                "来週 日本 に 行きます",
                day=9,
            ),
            to=[rep],
        ),
        "tags": deliver(
            c,
            raw(
                "Eve <eve@customer.test>",
                rep.email,
                "About <script>",
                "the <b>proposal</b> & terms",
                day=12,
            ),
            to=[rep],
        ),
    }


@pytest.mark.parametrize("continuations", [queries.CONTINUATIONS, 0])
def test_every_word_must_match_and_the_last_one_is_a_prefix(rep, mails, monkeypatch, continuations):
    # A prefix is spelt out as the words it starts (or, with too many, left a prefix):
    # the same messages either way.
    monkeypatch.setattr(queries, "CONTINUATIONS", continuations)
    assert found(rep, "proposal acme") == ["Proposal for Acme"]
    assert set(found(rep, "propo")) == {"About <script>", "Proposal for Acme"}
    assert found(rep, "proposal lunch") == []


def test_a_quoted_phrase_needs_its_words_together(rep, mails):
    assert found(rep, '"proposal we discussed"') == ["Proposal for Acme"]
    assert found(rep, '"discussed proposal"') == []


@pytest.mark.parametrize("continuations", [queries.CONTINUATIONS, 0])
def test_from_and_to_find_people_by_name_or_address(rep, mails, monkeypatch, continuations):
    monkeypatch.setattr(queries, "CONTINUATIONS", continuations)
    assert found(rep, "from:jane") == ["Proposal for Acme"]
    assert found(rep, "from:jane@customer.test") == ["Proposal for Acme"]
    assert found(rep, 'from:"Bob Stone"') == ["Lunch"]
    assert found(rep, "to:ann") == ["出張"]
    assert found(rep, "from:ann") == []  # Ann only received it
    assert found(rep, "from:ja") == ["Proposal for Acme"]  # the start of a name
    assert found(rep, "from:jane@cust") == ["Proposal for Acme"]
    assert found(rep, "", sender="bob") == ["Lunch"]
    assert found(rep, "", recipient="customer.test") == ["出張"]


def test_a_whole_address_is_looked_for_as_it_is(rep, mails, django_capture_on_commit_callbacks):
    c = django_capture_on_commit_callbacks
    deliver(c, raw("jane@customer.testing.example", rep.email, "Other Jane", "hi"), to=[rep])
    assert found(rep, "from:jane@customer.test") == ["Proposal for Acme"]
    assert found(rep, "", sender="jane@customer.test") == ["Proposal for Acme"]
    assert set(found(rep, "from:jane@custom")) == {"Proposal for Acme", "Other Jane"}


def test_attachment_names_are_searched_and_has_attachment_filters(rep, mails):
    assert found(rep, "pricing") == ["Proposal for Acme"]
    assert found(rep, "has:attachment") == ["Proposal for Acme"]
    assert "Proposal for Acme" not in found(rep, "", has_attachment=False)


def test_date_ranges_keep_their_exact_days_across_months_and_years(
    rep, django_capture_on_commit_callbacks
):
    # The index narrows a range to whole months and years; the days at either end are
    # still the user's: a message two days outside the range, in a month the range
    # touches, is not found.
    c = django_capture_on_commit_callbacks
    for day, subject in ((-2, "May 30"), (29, "June 30"), (31, "July 2"), (215, "January 2")):
        deliver(c, raw("jane@customer.test", rep.email, subject, "memo", day=day), to=[rep])
    assert found(rep, "memo after:2026-05-31 before:2026-07-02") == ["June 30"]
    assert found(rep, "memo after:2026-06-01 before:2027-02-01") == [
        "January 2",
        "July 2",
        "June 30",
    ]
    assert found(rep, "memo after:2026-07-01") == ["January 2", "July 2"]
    assert found(rep, "memo before:2026-06-01") == ["May 30"]
    assert found(rep, "memo after:2027-01-03") == []
    # The tokens that carry the dates cannot be typed.
    for text in ("m202606", "_m202606", "y2026", "memo _y2026"):
        assert found(rep, text) == []


def test_dates_before_and_after(rep, mails):
    assert set(found(rep, "after:2026-06-07")) == {"出張", "About <script>"}
    assert set(found(rep, "before:2026-06-07")) == {"Proposal for Acme", "Lunch"}
    assert found(rep, "after:2026-06-07 before:2026-06-11") == ["出張"]
    assert found(rep, "", after=date(2026, 6, 13)) == ["About <script>"]


@pytest.mark.parametrize(
    ("date_tokens", "few_dates"),
    [(queries.DATE_TOKENS, queries.FEW_DATES), (0, queries.FEW_DATES), (0, 0)],
)
def test_words_with_dates_and_attachments(rep, mails, monkeypatch, date_tokens, few_dates):
    # A range is looked for as the index's year and month tokens; a range of too many
    # of them, when it is short, is read from the date index first; a long one (here:
    # any) is tested on each match's date. The answer is the same.
    monkeypatch.setattr(queries, "DATE_TOKENS", date_tokens)
    monkeypatch.setattr(queries, "FEW_DATES", few_dates)
    assert found(rep, "proposal after:2026-06-07") == ["About <script>"]
    assert found(rep, "proposal before:2026-06-07") == ["Proposal for Acme"]
    assert found(rep, "proposal after:2026-06-03 before:2026-06-11") == []
    assert found(rep, "proposal has:attachment") == ["Proposal for Acme"]
    assert found(rep, "proposal has:attachment after:2026-06-07") == []
    assert found(rep, "proposal", has_attachment=False) == ["About <script>"]


def test_folder_unread_and_mailbox_filters_read_the_viewers_own_copies(rep, mails):
    box = rep.mailboxes.get()
    archive = Folder.objects.create(mailbox=box, remote_id="Archive", name="Archive")
    lunch = mails["lunch"].locations.get()
    lunch.folder = archive
    lunch.seen = True
    lunch.save()
    assert found(rep, "in:archive") == ["Lunch"]
    assert found(rep, "in:nowhere") == []
    assert "Lunch" not in found(rep, "in:inbox")
    assert found(rep, "", folder_id=archive.pk) == ["Lunch"]
    assert "Lunch" not in found(rep, "is:unread")
    assert found(rep, "is:read") == ["Lunch"]
    assert len(found(rep, "", mailbox_id=box.pk)) == 4


def test_non_ascii_words_match_with_and_without_accents(rep, mails):
    assert found(rep, "café") == ["Lunch"]
    assert found(rep, "cafe") == ["Lunch"]
    assert found(rep, "strasse") == ["Lunch"]
    assert found(rep, "STRASSE") == ["Lunch"]
    assert found(rep, "日本") == ["出張"]
    assert found(rep, "出張") == ["出張"]


def test_highlights_are_escaped_and_marked(rep, mails):
    hits = search_messages(rep, parse("proposal"), limit=10).hits
    by_subject = {h.message.subject: h for h in hits}
    tags = by_subject["About <script>"]
    assert "<script>" not in tags.subject_html
    assert "&lt;script&gt;" in tags.subject_html
    assert "&lt;b&gt;<mark>proposal</mark>&lt;/b&gt; &amp; terms" in tags.snippet_html
    assert by_subject["Proposal for Acme"].subject_html == "<mark>Proposal</mark> for Acme"
    lunch = search_messages(rep, parse("cafe"), limit=1).hits[0]
    assert "<mark>café</mark>" in lunch.snippet_html


def test_words_another_parser_would_cut_differently_are_found_as_typed(
    rep, django_capture_on_commit_callbacks
):
    # PostgreSQL's own parser reads 71e31f as the number 71e31 and the word f, splits a
    # word at a digit such as ৴ and lower-cases Cherokee where case folding upper-cases
    # it: the index holds crmail's words, as the query asks for them.
    c = django_capture_on_commit_callbacks
    deliver(c, raw("a@x.test", rep.email, "Order", "ticket 71e31f is open"), to=[rep])
    deliver(c, raw("b@x.test", rep.email, "Cherokee", "ᏣᎳᎩ ꮳꮃꭹ text"), to=[rep])
    deliver(c, raw("c@x.test", rep.email, "Bengali", "মূল্য ১৴২ টাকা"), to=[rep])
    assert found(rep, "71e31f") == ["Order"]
    assert found(rep, '"ticket 71e31f is"') == ["Order"]
    assert found(rep, "ꮳꮃꭹ") == ["Cherokee"]
    assert found(rep, "ᏣᎳᎩ") == ["Cherokee"]
    assert found(rep, "১৴২") == ["Bengali"]
    assert found(rep, '"১৴২ টাকা"') == ["Bengali"]


def test_a_subject_match_ranks_above_a_body_match(rep, django_capture_on_commit_callbacks):
    c = django_capture_on_commit_callbacks
    deliver(c, raw("a@x.test", rep.email, "Weekly notes", "we talked about the invoice"), to=[rep])
    deliver(c, raw("b@x.test", rep.email, "Invoice 42", "see the attachment"), to=[rep])
    assert found(rep, "invoice") == ["Invoice 42", "Weekly notes"]


def test_a_thread_is_one_row_with_its_count(rep, django_capture_on_commit_callbacks):
    c = django_capture_on_commit_callbacks
    first = deliver(c, raw("a@x.test", rep.email, "Renewal", "renewal terms"), to=[rep])
    deliver(
        c,
        raw(
            "b@x.test",
            rep.email,
            "Re: Renewal",
            "renewal agreed",
            reply_to=f"<{first.message_id.strip('<>')}>",
        ),
        to=[rep],
    )
    results = search_messages(rep, parse("renewal"), limit=10)
    assert results.count == 1
    assert [h.in_thread for h in results.hits] == [2]


def test_a_common_word_shows_its_best_page_and_says_there_is_more(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    c = django_capture_on_commit_callbacks
    first = deliver(c, raw("a@x.test", rep.email, "Offer", "offer one", day=1), to=[rep])
    deliver(
        c,
        raw("b@x.test", rep.email, "Re: Offer", "offer two", day=2, reply_to=first.message_id),
        to=[rep],
    )
    for n in range(5):
        deliver(c, raw("c@x.test", rep.email, f"Note {n}", "an offer", day=3 + n), to=[rep])
    everything = search_messages(rep, parse("offer"), limit=3)
    assert (everything.count, everything.more) == (6, False)
    # Two matches looked at first, then four: the page is the same, counted as "at least".
    monkeypatch.setattr(queries, "WINDOW", 2)
    monkeypatch.setattr(queries, "GROWTH", 2)
    bounded = search_messages(rep, parse("offer"), limit=3)
    assert [h.message.pk for h in bounded.hits] == [h.message.pk for h in everything.hits]
    assert [h.in_thread for h in bounded.hits] == [h.in_thread for h in everything.hits]
    assert bounded.more and 3 <= bounded.count < 6
    newest = search_messages(rep, parse("is:unread"), limit=2)
    assert [h.message.subject for h in newest.hits] == ["Note 4", "Note 3"] and newest.more


def test_a_word_in_very_many_messages_is_ranked_among_its_newest(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    c = django_capture_on_commit_callbacks
    deliver(c, raw("a@x.test", rep.email, "Offer", "the offer", day=1), to=[rep])
    for n in range(4):
        deliver(c, raw("c@x.test", rep.email, f"Note {n}", "an offer", day=2 + n), to=[rep])
    assert found(rep, "offer")[0] == "Offer"  # the subject match ranks first
    # Only the three newest matches are scored: the best of them comes first, and the
    # count says there is more.
    monkeypatch.setattr(queries, "RANKED", 3)
    monkeypatch.setattr(queries, "RANKED_PER_WINDOW", 1)
    monkeypatch.setattr(queries, "WINDOW", 2)
    first = search_messages(rep, parse("offer"), limit=1)
    assert [h.message.subject for h in first.hits] == ["Note 3"] and first.more
    # A page that the newest matches cannot fill looks further back.
    everything = search_messages(rep, parse("offer"), limit=10)
    assert set(h.message.subject for h in everything.hits) == {
        "Offer",
        "Note 0",
        "Note 1",
        "Note 2",
        "Note 3",
    }


@pytest.mark.parametrize("few", [queries.FEW, 0])
def test_words_on_a_linked_record_find_its_mail_alone(
    rep, django_capture_on_commit_callbacks, monkeypatch, few
):
    # With few messages on the record, the index is asked about those alone; with more
    # (here: any), the record is a filter on the best matches. The answer is the same.
    monkeypatch.setattr(queries, "FEW", few)
    c = django_capture_on_commit_callbacks
    jane = f.contact(rep, "jane@customer.test")
    deliver(
        c, raw("jane@customer.test", rep.email, "Renewal", "renewal terms"), to=[rep], on=[jane]
    )
    deliver(c, raw("jane@customer.test", rep.email, "Lunch", "no business"), to=[rep], on=[jane])
    deliver(c, raw("bob@other.test", rep.email, "Renewal too", "renewal"), to=[rep])
    assert found(rep, "renewal", record=("contacts", jane.pk)) == ["Renewal"]
    assert found(rep, "renewal") == ["Renewal too", "Renewal"]
    assert set(found(rep, "", record=("contacts", jane.pk))) == {"Renewal", "Lunch"}


def test_search_never_shows_or_counts_mail_the_viewer_may_not_open(
    org, django_capture_on_commit_callbacks
):
    c = django_capture_on_commit_callbacks
    actions.set_sharing(None, org.rep, mode="private")
    jane = f.contact(org.rep, "jane@customer.test")
    deliver(
        c,
        raw("jane@customer.test", org.rep.email, "Secret offer", "offer"),
        to=[org.rep],
        on=[jane],
    )
    assert found(org.rep, "offer") == ["Secret offer"]
    for other in (org.manager, org.peer, org.admin):
        results = search_messages(other, parse("offer"), limit=10)
        assert (results.hits, results.count) == ([], 0), other


def test_bad_operators_are_named():
    with pytest.raises(QueryError, match="before:"):
        parse("before:yesterday")
    with pytest.raises(QueryError, match="has:"):
        parse("has:pictures")
    with pytest.raises(QueryError, match="is:"):
        parse("is:starred")
    assert [t.words for t in parse("foo:bar").terms] == [("foo", "bar")]


def test_reindex_rebuilds_what_was_lost(rep, mails):
    with index.connection.cursor() as cursor:
        table = "search_fts" if index.connection.vendor == "sqlite" else "search_document"
        cursor.execute(f"DELETE FROM {table}")
    assert found(rep, "proposal") == []
    assert index.reindex() == 4
    assert found(rep, "proposal acme") == ["Proposal for Acme"]
    assert index.reindex(mailbox_id=rep.mailboxes.get().pk) == 4


def test_a_deleted_message_leaves_the_index(rep, mails):
    from crmail.mail.models import Message

    mails["lunch"].locations.all().delete()
    Message.objects.filter(pk=mails["lunch"].pk).delete()
    assert index.indexed_count() == 3


def test_a_deactivated_user_finds_nothing(rep, mails):
    type(rep).objects.filter(pk=rep.pk).update(is_active=False)
    rep.refresh_from_db()
    results = search_messages(rep, parse("proposal"), limit=10)
    assert (results.hits, results.count) == ([], 0)


@pytest.mark.parametrize(
    "text",
    [
        '"',
        "NEAR(a b)",
        "*",
        "a OR b",
        "'; DROP TABLE x; --",
        "proposal\\",
        "%_",
        "AND",
        "from:",
        'in:""x',
    ],
)
def test_query_syntax_of_the_database_is_only_words(rep, mails, text):
    try:
        results = search_messages(rep, parse(text), limit=10)
    except QueryError:
        return
    assert results.count == len(results.hits)


def test_ascii_and_other_text_are_cut_into_the_same_words():
    assert words("Re: Foo_bar-BAZ 1.5 jane@acme.com") == [
        "re", "foo", "bar", "baz", "1", "5", "jane", "acme", "com",
    ]  # fmt: skip
    assert words("Ré: Foo_bar-BÄZ 1.5 jane@acme.com") == words("Re: Foo_bar-BAZ 1.5 jane@acme.com")
    assert words("x" * 101 + " ok") == ["ok"]


def test_tag_finds_the_tagged_mail_alone_or_with_words(rep, mails):
    from crmail.mail import tags

    tags.tag_messages([mails["proposal"].pk, mails["lunch"].pk], ["Follow up"], actor=rep)
    tags.tag_messages([mails["lunch"].pk], ["Food"], actor=rep)
    assert set(found(rep, 'tag:"follow up"')) == {"Proposal for Acme", "Lunch"}
    assert found(rep, 'tag:"Follow up" tag:food') == ["Lunch"]
    assert found(rep, 'proposal tag:"follow up"') == ["Proposal for Acme"]
    assert found(rep, "", tag="FOOD") == ["Lunch"]
    assert found(rep, "tag:never") == []
    with pytest.raises(QueryError, match="tag:"):
        parse("tag:")


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_thread_counts_read_from_the_documents_agree_with_the_index(
    rep, django_capture_on_commit_callbacks
):
    # When the window cuts matches off, a page's thread counts are checked on the
    # members' documents in Python (``_holds``); they must say what FTS5 says.
    c = django_capture_on_commit_callbacks
    bodies = [
        ("ann@x.test", "Contract", "the renewal terms, Straße 5"),
        ("bob@x.test", "Re: Contract", "renewals pending"),
        ("ann@x.test", "Re: Contract", "terms renewal"),
        ("cy@x.test", "Renewal", "nothing here"),
    ]
    for sender, subject, body in bodies:
        deliver(c, raw(sender, rep.email, subject, body), to=[rep])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid, subject, sender, recipients, body, attachments FROM search_fts"
        )
        documents = cursor.fetchall()
    for text in (
        "renewal",
        "renewal terms",
        '"renewal terms"',
        '"terms renewal"',
        "from:ann renewal",
        "to:bob",
        "strasse",
        "contract pending",
    ):
        query = parse(text)
        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH %s", [query.fts5()])
            by_index = {row[0] for row in cursor.fetchall()}
        by_documents = {row[0] for row in documents if queries._holds(query, row[1:])}
        assert by_documents == by_index, text
        assert by_index or text == "to:bob", text


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.parametrize("kind", ["_b", "_c"])
def test_postgresql_reads_the_newest_buckets_first_and_widens_a_slice_that_holds_too_few(
    rep, django_capture_on_commit_callbacks, monkeypatch, kind
):
    # Buckets of two message ids, coarse ones of four. "offer" said (by the statistics)
    # to be in every message: the search starts from the newest buckets, sized for the
    # four matches it ranks; the statistics lie (every fourth message holds it), and
    # the slice is widened until it holds them (the fourth newest, with the word in its
    # subject, comes first). A word said to be in fewer messages
    # than its slice would hold is sought through its own list, narrowed by the coarse
    # buckets. The page is that of the whole index either way.
    from django.test.utils import CaptureQueriesContext

    for module in (index, queries):
        monkeypatch.setattr(module, "BUCKET", 2)
        monkeypatch.setattr(module, "COARSE", 4)
    c = django_capture_on_commit_callbacks
    for n in range(24):
        body = "an offer" if n % 4 == 1 else "a note"
        subject = "Offer" if n == 17 else f"Note {n}"
        deliver(c, raw("c@x.test", rep.email, subject, body, day=1 + n), to=[rep])
    index.reindex()
    monkeypatch.setattr(queries, "RANKED", 3)
    monkeypatch.setattr(queries, "RANKED_PER_WINDOW", 1)
    monkeypatch.setattr(queries, "WINDOW", 2)
    monkeypatch.setattr(queries, "_frequencies", lambda: ({"offer": 0.0}, 0.0))
    whole = search_messages(rep, parse("offer"), limit=2)  # no statistics: every bucket
    # A slice of 6 / share ids (four ranked, half as many again); the word's own list:
    # share times the highest id. Coarse buckets when the slice is the larger.
    highest = max(h.message.pk for h in whole.hits)
    share = 1.0 if kind == "_b" else 0.9 * (6 / highest) ** 0.5
    monkeypatch.setattr(queries, "_frequencies", lambda: ({"offer": share}, share / 100))
    with CaptureQueriesContext(connection) as ran:
        sliced = search_messages(rep, parse("offer"), limit=2)
    assert [h.message.subject for h in sliced.hits] == [h.message.subject for h in whole.hits]
    assert [h.message.subject for h in sliced.hits] == ["Offer", "Note 21"]
    asked = [q["sql"] for q in ran.captured_queries if "WITH m AS" in q["sql"]]
    assert f"'{kind}" in asked[0]  # the first statement reads a slice
    if kind == "_b":
        assert len(asked) >= 2  # too few in the first: widened


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_reads_a_prefix_of_many_words_row_by_row_in_the_newest_ids(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    # "off" stays a prefix (no word spelt out): the index would gather the matches of
    # every word it starts before handing over the newest. Said by the statistics to be
    # in every message (it is in every fourth), it is read row by row from the newest
    # ids, and the slice widened when it holds too few; "coffee" holds it but does not
    # start with it. The page is the whole index's.
    from django.test.utils import CaptureQueriesContext

    for module in (index, queries):
        monkeypatch.setattr(module, "BUCKET", 2)
    c = django_capture_on_commit_callbacks
    for n in range(24):
        body = ("offers", "an offering")[n % 2] if n % 4 in (1, 3) and n % 8 < 4 else "coffee"
        deliver(c, raw("c@x.test", rep.email, f"Note {n}", body, day=1 + n), to=[rep])
    index.reindex()
    monkeypatch.setattr(queries, "CONTINUATIONS", 0)
    monkeypatch.setattr(queries, "RANKED", 3)
    monkeypatch.setattr(queries, "RANKED_PER_WINDOW", 1)
    monkeypatch.setattr(queries, "WINDOW", 2)
    monkeypatch.setattr(queries, "_frequencies", lambda: ({"offers": 0.0}, 0.0))
    with CaptureQueriesContext(connection) as indexed:
        whole = search_messages(rep, parse("off"), limit=2)  # no statistics: the index
    listed = {"offers": 0.5, "offering": 0.5, "coffee": 0.5}
    monkeypatch.setattr(queries, "_frequencies", lambda: (listed, 0.01))
    with CaptureQueriesContext(connection) as ran:
        walked = search_messages(rep, parse("off"), limit=2)
    assert [h.message.subject for h in walked.hits] == [h.message.subject for h in whole.hits]
    assert [h.message.subject for h in walked.hits] == ["Note 19", "Note 17"]
    assert (walked.count, walked.more) == (whole.count, whole.more)
    asked = [q["sql"] for q in ran.captured_queries if "WITH m AS" in q["sql"]]
    assert "ts_match_vq" in asked[0]
    assert not any("ts_match_vq" in q["sql"] for q in indexed.captured_queries)
    assert len(asked) >= 2  # too few in the first slice: widened


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_sizes_its_first_slice_in_ids_when_the_newest_bucket_has_just_begun(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    # Buckets of ten ids; the highest id opens a bucket of its own. The word is in every
    # message and the statistics say so: the first slice reaches back into the bucket
    # before (the six ids four ranked matches need, half as many again) and is asked once.
    from django.test.utils import CaptureQueriesContext

    for module in (index, queries):
        monkeypatch.setattr(module, "BUCKET", 10)
    c = django_capture_on_commit_callbacks
    n = 0
    while n < 12 or Message.objects.order_by("-pk").values_list("pk", flat=True)[0] % 10:
        deliver(c, raw("c@x.test", rep.email, f"Offer {n}", "an offer", day=1 + n), to=[rep])
        n += 1
    index.reindex()
    monkeypatch.setattr(queries, "RANKED", 3)
    monkeypatch.setattr(queries, "RANKED_PER_WINDOW", 1)
    monkeypatch.setattr(queries, "WINDOW", 2)
    monkeypatch.setattr(queries, "_frequencies", lambda: ({"offer": 1.0}, 0.01))
    with CaptureQueriesContext(connection) as ran:
        result = search_messages(rep, parse("offer"), limit=2)
    assert [h.message.subject for h in result.hits] == [f"Offer {n - 1}", f"Offer {n - 2}"]
    asked = [q["sql"] for q in ran.captured_queries if "WITH m AS" in q["sql"]]
    assert len(asked) == 1 and "'_b" in asked[0]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_widens_a_slice_by_the_share_of_matches_it_held(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    # Both words are said to be in every message, and are; the phrase is in the oldest
    # two alone. The first slice holds none of it: the next statement asks the whole
    # index at once, not a slice eight times as wide (six ids, then 48 of 60), then ...
    from django.test.utils import CaptureQueriesContext

    for module in (index, queries):
        monkeypatch.setattr(module, "BUCKET", 1)
    c = django_capture_on_commit_callbacks
    for n in range(60):
        body = "proposal pricing" if n < 2 else "pricing of the proposal"
        deliver(c, raw("c@x.test", rep.email, f"Note {n}", body, day=1 + n), to=[rep])
    index.reindex()
    monkeypatch.setattr(queries, "RANKED", 3)
    monkeypatch.setattr(queries, "RANKED_PER_WINDOW", 1)
    monkeypatch.setattr(queries, "WINDOW", 2)
    monkeypatch.setattr(queries, "_frequencies", lambda: ({"proposal": 1.0, "pricing": 1.0}, 0.01))
    with CaptureQueriesContext(connection) as ran:
        result = search_messages(rep, parse('"proposal pricing"'), limit=2)
    assert [h.message.subject for h in result.hits] == ["Note 1", "Note 0"]
    pages = [
        q["sql"] for q in ran.captured_queries if "WITH m AS" in q["sql"] and "OFFSET" in q["sql"]
    ]
    assert len(pages) == 2
    assert "'_b" in pages[0] and "'_b" not in pages[1]


def test_the_share_estimated_to_match_counts_a_phrase_by_its_pair_and_a_range_by_its_days(
    monkeypatch,
):
    # What a PostgreSQL slice is sized from (decision 049). A pair holds both its words:
    # "from to" is as rare as its pair, not a third of it. The months of a range that
    # starts on 31 March hold twice as many messages as the range.
    monkeypatch.setattr(
        queries,
        "_frequencies",
        lambda: (
            {"from": 0.5, "to": 0.9, "_from to": 0.01, "_m202303": 0.02, "_m202304": 0.02},
            0.001,
        ),
    )
    assert queries._density(parse('"from to"'), []) == (pytest.approx(0.01), pytest.approx(0.01))
    dated = parse("from after:2023-03-31 before:2023-04-30")
    tokens = queries._date_tokens(dated)
    assert tokens == ["_m202303", "_m202304"]
    assert queries._density(dated, tokens)[0] == pytest.approx(0.5 * 0.04 * 30 / 61)


def test_a_prefix_finds_words_first_indexed_after_it_was_spelt_out(
    rep, django_capture_on_commit_callbacks
):
    # The words a prefix is spelt out as come from the index's word list: a word new to
    # the index is in it as soon as its document is.
    c = django_capture_on_commit_callbacks
    deliver(c, raw("a@x.test", rep.email, "Proposal", "the proposal"), to=[rep])
    assert found(rep, "propo") == ["Proposal"]
    deliver(c, raw("b@x.test", rep.email, "Plans", "we propose a call", day=2), to=[rep])
    deliver(c, raw("d@x.test", rep.email, "Again", "we propose a call", day=3), to=[rep])
    assert set(found(rep, "propo")) == {"Proposal", "Plans", "Again"}


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_finds_phrases_with_a_short_word_through_their_pair_and_loses_none(
    rep, django_capture_on_commit_callbacks, monkeypatch
):
    # Two words next to each other, one of them short, are a lexeme of their own: a
    # phrase of them is asked of the index as that pair too. Every message the phrase
    # finds without the pair (PostgreSQL's <-> on the words' positions, across fields
    # too) it finds with it.
    c = django_capture_on_commit_callbacks
    texts = [
        ("Call with", "a plan for the day"),
        ("Plans", "we met with a client and the team"),
        ("Team", "with the team a plan is due"),
        ("a", "day with a view"),
    ]
    for n, (subject, body) in enumerate(texts):
        deliver(c, raw("c@x.test", rep.email, subject, body, day=1 + n), to=[rep])
    assert set(found(rep, '"with a"')) == {"Plans", "a"}
    assert found(rep, '"the team a"') == ["Team"]
    assert found(rep, '"with c"') == ["Call with"]  # the subject's last word, the sender's first
    assert found(rep, '"client and"') == ["Plans"]  # one long word
    assert "'_client and'" in queries._match(parse('"client and"'), {}, []).extra
    phrases = set()
    for document in index._documents(list(Message.objects.values_list("pk", flat=True))):
        sequence = [w for field in document[1:6] for w in field.split()]
        phrases |= {f'"{a} {b}"' for a, b in itertools.pairwise(sequence)}
    with_pairs = {text: set(found(rep, text)) for text in phrases}
    monkeypatch.setattr(queries, "_pairs", lambda query: [])
    assert {text: set(found(rep, text)) for text in phrases} == with_pairs


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_plans_the_rest_of_the_session_as_before_a_search(rep, mails, monkeypatch):
    # A search keeps PostgreSQL from reading the whole table for its statement alone:
    # after it, and after one that failed, the setting is the server's again.
    from django.db import DatabaseError, transaction

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_seqscan")
            return str(cursor.fetchone()[0])

    assert found(rep, "proposal")
    assert setting() == "on"
    monkeypatch.setattr(queries, "THREAD", "no_such_column")
    with pytest.raises(DatabaseError), transaction.atomic():
        search_messages(rep, parse("proposal"))
    assert setting() == "on"
