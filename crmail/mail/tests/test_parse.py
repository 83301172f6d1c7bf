"""Parsing real and broken mail: every message yields a result, fallbacks are recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmail.mail.parse import parse_message, part_bytes

CORPUS = sorted((Path(__file__).parents[3] / "tests" / "data" / "cpython_email").glob("msg_*.txt"))


def test_the_corpus_is_there():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_message_parses_without_raising(path):
    parsed = parse_message(path.read_bytes())
    assert isinstance(parsed.subject, str)
    for p in parsed.participants:
        assert "\r" not in p.address and "\n" not in p.address


def test_a_plain_message():
    raw = (
        b'From: "Ada Lovelace" <Ada@Example.COM>\r\n'
        b"To: bob@example.org, Carol <carol@example.net>\r\n"
        b"Cc: =?utf-8?q?J=C3=BCrgen?= <juergen@example.de>\r\n"
        b"Subject: =?utf-8?b?w4RwZmVs?= and pears\r\n"
        b"Date: Tue, 03 Nov 2026 10:15:00 +0100\r\n"
        b"Message-ID: <abc.123@example.com>\r\n"
        b"In-Reply-To: <parent@example.com>\r\n"
        b"References: <root@example.com> <parent@example.com>\r\n"
        b"\r\nHello Bob.\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.subject == "Äpfel and pears"
    assert parsed.message_id == "abc.123@example.com"
    assert parsed.in_reply_to == "parent@example.com"
    assert parsed.references == ["root@example.com", "parent@example.com"]
    assert parsed.date == datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
    assert parsed.addresses("from") == ["ada@example.com"]
    assert parsed.addresses("to", "cc") == [
        "bob@example.org",
        "carol@example.net",
        "juergen@example.de",
    ]
    names = {p.address: p.name for p in parsed.participants}
    assert names["ada@example.com"] == "Ada Lovelace" and names["juergen@example.de"] == "Jürgen"
    assert parsed.text.strip() == "Hello Bob."
    assert not parsed.automated


def test_unknown_charset_falls_back_and_says_so():
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text.strip() == "Grüße"
    assert any("fallback" in p for p in parsed.problems)


def test_8bit_header_bytes_are_read_as_utf8_or_latin1():
    parsed = parse_message(b"From: J\xfcrgen <j@example.de>\r\nSubject: Caf\xc3\xa9\r\n\r\nx")
    assert parsed.subject == "Café"
    assert parsed.participants[0].name == "Jürgen"


def test_malformed_message_id_does_not_break_other_headers():
    raw = b"From: a@example.com\r\nMessage-ID: <@>\r\nSubject: still here\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.subject == "still here"
    assert parsed.addresses("from") == ["a@example.com"]


def test_invalid_addresses_are_kept_but_marked():
    parsed = parse_message(b"From: not an address\r\nTo: ok@example.com\r\n\r\n")
    assert parsed.addresses() == ["ok@example.com"]
    assert any(not p.valid for p in parsed.participants)


def test_mailing_list_and_automated_mail_are_marked():
    assert parse_message(b"From: a@x.example\r\nList-Id: <news.x.example>\r\n\r\n").automated
    assert parse_message(b"From: a@x.example\r\nAuto-Submitted: auto-replied\r\n\r\n").automated
    assert parse_message(b"From: a@x.example\r\nPrecedence: bulk\r\n\r\n").automated
    assert not parse_message(b"From: a@x.example\r\nAuto-Submitted: no\r\n\r\n").automated


def test_multipart_bodies_and_attachments():
    raw = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B1"\r\n\r\n'
        b'--B1\r\nContent-Type: multipart/alternative; boundary="B2"\r\n\r\n'
        b"--B2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain body\r\n"
        b"--B2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html body</p>\r\n--B2--\r\n"
        b'--B1\r\nContent-Type: application/pdf; name="offer.pdf"\r\n'
        b'Content-Disposition: attachment; filename="../../offer.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B1--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text.strip() == "plain body"
    assert parsed.html.strip() == "<p>html body</p>"
    [attachment] = parsed.attachments
    assert attachment.content_type == "application/pdf"
    assert attachment.filename == ".._.._offer.pdf"  # no path separators survive
    data, ctype, _ = part_bytes(raw, attachment.part)
    assert data == b"%PDF-1.4\n" and ctype == "application/pdf"
    assert attachment.size == len(data)


def test_unreadable_date_is_none_and_flagged():
    parsed = parse_message(b"From: a@example.com\r\nDate: someday soon\r\n\r\n")
    assert parsed.date is None
    assert "header date: unreadable" in parsed.problems


def test_garbage_still_gives_a_result():
    parsed = parse_message(b"\x00\xff\xfe garbage without headers \r\n\r\n\r\n--")
    assert parsed.participants == []
