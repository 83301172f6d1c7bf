"""Gmail's exported filters become crmail rules; what cannot be said is listed, line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmail.workflows.imports import FilterImportError, read_file, read_text
from crmail.workflows.spec import RuleSpec

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

DATA = Path(__file__).parent / "data" / "filters"


def feed(*entries: str) -> str:
    body = "\n".join(
        "\t<entry>\n\t\t<category term='filter'></category>\n\t\t<title>Mail Filter</title>\n"
        + "\n".join(f"\t\t{line}" for line in entry.strip().splitlines())
        + "\n\t</entry>"
        for entry in entries
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
        "xmlns:apps='http://schemas.google.com/apps/2006'>\n\t<title>Mail Filters</title>\n"
        f"{body}\n</feed>\n"
    )


def prop(name: str, value: str) -> str:
    value = value.replace("&", "&amp;").replace("'", "&apos;").replace('"', "&quot;")
    value = value.replace("<", "&lt;").replace(">", "&gt;")
    return f"<apps:property name='{name}' value='{value}'/>"


def one_rule(text: str) -> dict:
    result = read_text(text)
    assert not result.skipped, result.problems
    assert len(result.rules) == 1
    return result.rules[0].dump()


def test_a_real_export_imports_the_filters_crmail_can_hold_and_lists_the_rest():
    result = read_file((DATA / "mailFilters.xml").read_bytes())
    assert result.source == "gmail"
    by_name = {r.name: r.dump() for r in result.rules}
    assert len(result.rules) == 7 and len(result.skipped) == 5

    newsletters = by_name["Gmail filter from:(news@shop.example.com)"]
    assert newsletters["triggers"] == ["incoming"]
    assert newsletters["conditions"] == [
        {"field": "from", "op": "contains", "values": ["news@shop.example.com"]}
    ]
    # A label with "Skip the Inbox" is a folder: on Gmail's IMAP the label is one.
    assert newsletters["actions"] == [
        {"kind": "move_to_folder", "params": {"folder": "Newsletters"}}
    ]

    bosses = by_name["Gmail filter from:(ceo@acme.example OR cfo@acme.example)"]
    assert bosses["conditions"][0]["values"] == ["ceo@acme.example", "cfo@acme.example"]
    assert [a["kind"] for a in bosses["actions"]] == ["flag"]

    django = by_name["Gmail filter list:django-users@googlegroups.com"]
    assert django["conditions"] == [
        {
            "field": "header",
            "name": "List-Id",
            "op": "contains",
            "values": ["django-users.googlegroups.com"],
        }
    ]
    assert [a["kind"] for a in django["actions"]] == ["mark_read", "move_to_folder"]

    receipts = by_name["Gmail filter from:({paypal.com stripe.com}) subject:(receipt OR invoice)"]
    assert receipts["match"] == "all"
    assert receipts["conditions"] == [
        {"field": "from", "op": "contains", "values": ["paypal.com", "stripe.com"]},
        {"field": "subject", "op": "contains", "values": ["receipt", "invoice"]},
    ]
    # A label without "Skip the Inbox" leaves the message where it is: a tag.
    assert receipts["actions"] == [{"kind": "tag", "params": {"tags": ["Receipts"]}}]

    bulk = by_name["Gmail filter unsubscribe -{from:(@acme.example)}"]
    assert bulk["conditions"] == [
        {"field": "body", "op": "contains", "values": ["unsubscribe"]},
        {"field": "from", "op": "not_contains", "values": ["@acme.example"]},
    ]

    large = by_name["Gmail filter has:attachment larger:10M"]
    assert large["conditions"] == [
        {"field": "has_attachment", "op": "is", "values": [True]},
        {"field": "size", "op": "gt", "values": [10 * 1024 * 1024]},
    ]

    promo = by_name["Gmail filter from:(*@promo.example.net)"]
    assert promo["conditions"][0]["values"] == ["@promo.example.net"]
    assert [a["kind"] for a in promo["actions"]] == ["trash"]

    for rule in result.rules:
        assert RuleSpec.load(rule.dump()) == rule.spec


def test_each_filter_that_cannot_be_imported_is_listed_whole_with_every_reason():
    source = (DATA / "mailFilters.xml").read_text()
    lines = source.splitlines()
    result = read_text(source)
    reasons = {s.name: [p.reason for p in s.problems] for s in result.skipped}
    boss = reasons["Gmail filter from:(boss@acme.example) to:(me)"]
    assert len(boss) == 3
    assert any("'me' stands for your own addresses" in r for r in boss)
    assert "Gmail's 'Always mark it as important' has no counterpart in crmail." in boss
    assert "Gmail's 'Never send it to Spam' has no counterpart in crmail." in boss
    assert reasons["Gmail filter from:(orders@shop.example.com)"] == [
        "crmail does not forward mail; Gmail's 'Forward it to' cannot be imported."
    ]
    assert "inbox categories" in reasons["Gmail filter category:promotions"][0]
    nested = next(v for k, v in reasons.items() if "CRITICAL" in k)
    assert "nested" in nested[0]
    # Each problem names its line and quotes it.
    for problem in result.problems:
        assert problem.text == lines[problem.line - 1].strip()
    # Nothing of a listed filter is imported: the forwarding filter's label is not a tag.
    assert not any("Orders" in str(r.dump()) for r in result.rules)


def test_notes_say_where_the_meaning_differs():
    result = read_text((DATA / "mailFilters.xml").read_text())
    notes = {r.name: r.notes for r in result.rules}
    assert any(
        "List-Id header as 'django-users.googlegroups.com'" in n
        for n in notes["Gmail filter list:django-users@googlegroups.com"]
    )
    assert any(
        "looks for them in the message's text" in n
        for n in notes["Gmail filter unsubscribe -{from:(@acme.example)}"]
    )


@pytest.mark.parametrize(
    ("query", "match", "conditions"),
    [
        (
            "from:(a@x.example OR b@y.example) subject:report",
            "all",
            [
                {"field": "from", "op": "contains", "values": ["a@x.example", "b@y.example"]},
                {"field": "subject", "op": "contains", "values": ["report"]},
            ],
        ),
        (
            "from:a@x.example OR subject:report",
            "any",
            [
                {"field": "from", "op": "contains", "values": ["a@x.example"]},
                {"field": "subject", "op": "contains", "values": ["report"]},
            ],
        ),
        (
            '-subject:"out of office" -subject:autoreply',
            "all",
            [{"field": "subject", "op": "not_contains", "values": ["out of office", "autoreply"]}],
        ),
        (
            "-{from:a@x.example from:b@x.example}",
            "all",
            [{"field": "from", "op": "not_contains", "values": ["a@x.example", "b@x.example"]}],
        ),
        (
            "-has:attachment smaller:2M",
            "all",
            [
                {"field": "has_attachment", "op": "is", "values": [False]},
                {"field": "size", "op": "lt", "values": [2 * 1024 * 1024]},
            ],
        ),
        (
            'cc:team@x.example deliveredto:sales@x.example from:"Ann Lee"',
            "all",
            [
                {"field": "header", "op": "contains", "values": ["team@x.example"], "name": "Cc"},
                {
                    "field": "header",
                    "op": "contains",
                    "values": ["sales@x.example"],
                    "name": "Delivered-To",
                },
                {"field": "header", "op": "contains", "values": ["Ann Lee"], "name": "From"},
            ],
        ),
        (
            "list:<announce.lists.example.org>",
            "all",
            [
                {
                    "field": "header",
                    "op": "contains",
                    "values": ["announce.lists.example.org"],
                    "name": "List-Id",
                }
            ],
        ),
    ],
)
def test_gmail_search_language_becomes_flat_conditions(query, match, conditions):
    rule = one_rule(feed(prop("hasTheWord", query) + "\n" + prop("shouldStar", "true")))
    assert rule["match"] == match
    assert rule["conditions"] == conditions


def test_not_having_words_negates_the_whole_search():
    rule = one_rule(
        feed(
            "\n".join(
                [
                    prop("from", "@vendor.example"),
                    prop("doesNotHaveTheWord", "urgent OR invoice"),
                    prop("shouldArchive", "true"),
                ]
            )
        )
    )
    assert rule["conditions"] == [
        {"field": "from", "op": "contains", "values": ["@vendor.example"]},
        {"field": "body", "op": "not_contains", "values": ["urgent", "invoice"]},
    ]
    assert rule["actions"] == [{"kind": "archive", "params": {}}]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("label:work", "labels"),
        ("is:unread", "state in Gmail"),
        ("in:sent", "where Gmail keeps"),
        ("filename:pdf", "names of attachments"),
        ("older_than:1y", "cannot test dates"),
        ("after:2024/01/01", "cannot test dates"),
        ("has:drive", "has:drive"),
        ("holiday AROUND 10 vacation", "AROUND"),
        ("from:me", "'me' stands for your own addresses"),
        ("larger:lots", "cannot read the size"),
    ],
)
def test_searches_crmail_cannot_express_are_listed(query, words):
    text = feed(prop("hasTheWord", query) + "\n" + prop("shouldStar", "true"))
    result = read_text(text)
    assert result.rules == []
    [skipped] = result.skipped
    assert any(words in p.reason for p in skipped.problems)
    assert skipped.problems[0].line == 6


def test_unknown_settings_are_listed_not_dropped():
    text = feed(prop("from", "a@x.example") + "\n" + prop("shouldSnooze", "true"))
    [skipped] = read_text(text).skipped
    assert (
        skipped.problems[0].reason == "crmail does not know Gmail's filter setting 'shouldSnooze'."
    )


def test_a_filter_without_actions_or_criteria_is_listed():
    result = read_text(feed(prop("from", "a@x.example"), prop("shouldStar", "true")))
    reasons = [p.reason for s in result.skipped for p in s.problems]
    assert "This filter does nothing crmail's rules would do." in reasons
    assert "This filter has no criteria crmail can read." in reasons


def test_a_one_line_export_quotes_the_property_not_the_whole_file():
    text = feed(prop("hasTheWord", "label:x") + prop("shouldStar", "true")).replace("\n", "")
    [problem] = read_text(text).problems
    assert problem.line == 1
    assert problem.text == "hasTheWord: label:x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n\t", "The file is empty."),
        (b"<?xml version='1.0'?><feed><entry>", "not well-formed XML"),
        (b"<html><body>hello</body></html>", "not Gmail's filters export"),
        ("<feed>caf\u00e9</feed>".encode("latin-1"), "not UTF-8"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'></feed>", "no filters"),
        (b"x" * (1024 * 1024 + 1), "up to 1,024 KB"),
        (b"<feed>\x00</feed>", "null characters"),
    ],
)
def test_files_that_are_not_filters_are_refused_in_words(data, message):
    with pytest.raises(FilterImportError, match=message):
        read_file(data)


def test_document_types_are_refused_so_no_entity_is_ever_expanded():
    laughs = (
        "<?xml version='1.0'?>\n<!DOCTYPE feed [\n<!ENTITY a 'aaaaaaaaaa'>\n"
        "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\n]>\n"
        "<feed><entry><apps:property name='from' value='&b;'/></entry></feed>"
    )
    with pytest.raises(FilterImportError, match="document type") as refused:
        read_text(laughs)
    assert refused.value.line == 2
    external = (
        "<?xml version='1.0'?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\n"
        "<feed><entry><apps:property name='from' value='&x;'/></entry></feed>"
    )
    with pytest.raises(FilterImportError, match="document type"):
        read_text(external)
    with pytest.raises(FilterImportError, match="not well-formed"):
        read_text("<feed><entry><apps:property name='from' value='&x;'/></entry></feed>")
