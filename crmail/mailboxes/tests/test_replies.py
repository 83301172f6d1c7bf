"""The parts of an answer that need no server: subject, threading headers, quote, recipients."""

from __future__ import annotations

import pytest

from crmail.mail.parse import parse_message
from crmail.mailboxes.replies import quoted, recipients, references_for, subject_for

pytestmark = pytest.mark.database_independent  # no database: one pass runs it


@pytest.mark.parametrize(
    ("mode", "subject", "expected"),
    [
        ("reply", "Spring offer", "Re: Spring offer"),
        ("reply", "Re: RE: re:Spring offer", "Re: Spring offer"),
        ("all", "AW: Re[2]: Angebot", "Re: Angebot"),
        ("forward", "Fwd: Re: Spring offer", "Fwd: Spring offer"),
        ("forward", "FW: Spring offer", "Fwd: Spring offer"),
        ("reply", "Regarding: the offer", "Re: Regarding: the offer"),
        ("reply", "", "Re: "),
    ],
)
def test_a_prefix_is_added_once(mode, subject, expected):
    assert subject_for(mode, subject) == expected


RAW = (
    b"From: =?utf-8?q?Zo=C3=AB?= <zoe@client.example>\r\n"
    b"To: rep@crmail.test, Other <other@client.example>\r\n"
    b"Cc: REP@crmail.test\r\n"
    b"Subject: Hello\r\n"
    b"Date: Thu, 03 Dec 2026 09:30:00 +0000\r\n"
    b"Message-ID: <b@client.example>\r\n"
    b"In-Reply-To: <a@crmail.test>\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Fine &amp; good.</p><style>p{}</style><p>Second</p>\r\n"
)


def test_without_references_the_parents_in_reply_to_starts_the_chain():
    assert references_for(parse_message(RAW)) == ["a@crmail.test", "b@client.example"]


def test_an_html_only_message_is_quoted_as_text():
    assert quoted(parse_message(RAW)) == (
        "On 3 Dec 2026, Zoë wrote:\n> Fine & good.\n>\n> Second\n"
    )


def test_answering_ones_own_message_goes_to_its_recipients_again():
    own = {"rep@crmail.test"}
    mine = parse_message(
        RAW.replace(b"=?utf-8?q?Zo=C3=AB?= <zoe@client.example>", b"rep@crmail.test")
    )
    assert recipients(mine, "reply", own) == (["other@client.example"], [])
    assert recipients(parse_message(RAW), "all", own) == (
        ["zoe@client.example", "other@client.example"],
        [],
    )
