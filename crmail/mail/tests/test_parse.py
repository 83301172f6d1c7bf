"""Parsing real and broken mail: every message yields a result, fallbacks are recorded."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmail.mail import parse
from crmail.mail.parse import parse_headers, parse_message, part_bytes

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

CORPUS = sorted((Path(__file__).parents[3] / "tests" / "data" / "cpython_email").glob("msg_*.txt"))


def test_the_corpus_is_there():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_message_parses_without_raising(path):
    parsed = parse_message(path.read_bytes())
    assert isinstance(parsed.subject, str)
    for p in parsed.participants:
        assert "\r" not in p.address and "\n" not in p.address


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_bodies_alone_are_the_whole_parse_without_its_header_fields(path):
    # What the bodies after a first sync read (the sync read the header fields): the
    # same text, HTML and attachments, and the problems of the whole less those found
    # reading the header fields, which the sync saved.
    raw = path.read_bytes()
    whole, bodies = parse_message(raw), parse_message(raw, headers=False)
    headers = parse.parse_headers(raw).parsed
    assert (bodies.text, bodies.html, bodies.attachments) == (
        whole.text,
        whole.html,
        whole.attachments,
    )
    assert headers.problems + bodies.problems == whole.problems
    assert (bodies.subject, bodies.participants, bodies.date, bodies.message_id) == (
        "",
        [],
        None,
        "",
    )


def test_the_bodies_alone_keep_what_went_wrong_in_them_beside_a_bad_date():
    raw = (
        b"From: ada@example.com\r\nDate: the day after tomorrow\r\nSubject: s\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello\r\n"
    )
    whole, bodies = parse_message(raw), parse_message(raw, headers=False)
    assert whole.problems == [
        "header date: unreadable",
        "text part: LookupError, decoded with fallback",
    ]
    assert bodies.problems == whole.problems[1:]
    assert bodies.text == whole.text == "hello\r\n"


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


def test_a_date_with_an_offset_past_a_day_is_read_in_utc():
    # Real spam says "-1900"; PostgreSQL refuses such an offset, the instant is the same.
    parsed = parse_message(b"From: a@example.com\r\nDate: Sat, 20 Jul 2002 03:34:09 -1900\r\n\r\n")
    assert parsed.date == datetime(2002, 7, 20, 22, 34, 9, tzinfo=UTC)
    assert parsed.date.utcoffset().total_seconds() == 0
    assert parse.parse_headers(b"Date: Sat, 20 Jul 2002 03:34:09 -1900\r\n\r\n").parsed.date == (
        parsed.date
    )


def test_garbage_still_gives_a_result():
    parsed = parse_message(b"\x00\xff\xfe garbage without headers \r\n\r\n\r\n--")
    assert parsed.participants == []


# -- the fast path agrees with the standard library ---------------------------------------


def multipart(*parts: bytes, boundary: str = "XB") -> bytes:
    head = (
        "From: Ada <ada@example.com>\r\nTo: bob@example.org\r\nSubject: parts\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    ).encode()
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return head + b"preamble\r\n" + body + b"--" + boundary.encode() + b"--\r\nepilogue\r\n"


def attachment(data: bytes, name: str = "a.bin", *, wrap: int = 76, eol: bytes = b"\r\n") -> bytes:
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + wrap] for i in range(0, len(encoded), wrap)] if wrap else [encoded]
    return (
        f'Content-Type: application/octet-stream; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + eol.join(lines)


def same_result(raw: bytes) -> None:
    """The fast path, where it applies, gives exactly what the full parser gives."""
    try:
        fast = parse._fast_parse(raw)
    except parse._NeedsFullParser:
        return
    assert fast == parse.parse_full(raw)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_fast_path_reads_the_corpus_like_the_full_parser(path):
    same_result(path.read_bytes())


def test_ordinary_mail_takes_the_fast_path():
    raw = multipart(b"Content-Type: text/plain\r\n\r\nhello", attachment(b"data"))
    assert parse._fast_parse(raw).text == "hello"
    assert parse._fast_parse(b"From: a@example.com\r\n\r\nplain").text == "plain"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 56, 57, 58, 1000, 65_537])
@pytest.mark.parametrize(
    ("wrap", "eol"), [(76, b"\r\n"), (76, b"\n"), (64, b"\r\n"), (0, b"\r\n")], ids=str
)
def test_attachment_size_without_decoding_equals_decoded_size(size, wrap, eol):
    data = random.Random(size).randbytes(size)
    raw = multipart(
        b"Content-Type: text/plain\r\n\r\nsee attached", attachment(data, wrap=wrap, eol=eol)
    )
    parsed = parse_message(raw)
    [info] = parsed.attachments
    assert info.size == size == len(part_bytes(raw, info.part)[0])
    same_result(raw)


def test_attachment_sizes_match_their_decoded_bytes_on_the_corpus():
    for path in CORPUS:
        raw = path.read_bytes()
        for info in parse_message(raw).attachments:
            assert info.size == len(part_bytes(raw, info.part)[0]), (path.name, info)


def test_detach_takes_parts_out_and_leaves_the_rest_as_it_was():
    inner = (
        b'Content-Type: multipart/alternative; boundary="IN"\r\n\r\n'
        b"--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
        b"--IN\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n--IN--"
    )
    forwarded = b"Content-Type: message/rfc822\r\n\r\n" + multipart(
        attachment(b"inner", "inner.bin"), boundary="FW"
    )
    offer = b"%PDF-1.4 " * 100
    raw = multipart(
        inner, attachment(offer, "offer.pdf"), attachment(b"note", "note.txt"), forwarded
    )
    parsed = parse_message(raw)
    names = {a.filename: a.part for a in parsed.attachments}
    slim, taken = parse.detach(raw, [names["offer.pdf"], names["inner.bin"]])
    # The attached message is one whole: nothing is taken out of it.
    assert taken == {names["offer.pdf"]: offer}
    rest = parse_message(slim)
    assert (rest.subject, rest.text, rest.html) == (parsed.subject, parsed.text, parsed.html)
    assert [a.filename for a in rest.attachments] == ["note.txt", "inner.bin"]
    assert slim.split(b"\r\n\r\n")[0] == raw.split(b"\r\n\r\n")[0]
    assert parse.detach(raw, []) == (raw, {})


def test_broken_base64_is_left_to_the_full_parser():
    data = base64.b64encode(b"hello world!!")[:-2] + b"*!"
    raw = multipart(attachment(b"x")[: -len(base64.b64encode(b"x"))] + data)
    with pytest.raises(parse._NeedsFullParser):
        parse._fast_parse(raw)
    [info] = parse_message(raw).attachments
    assert info.size == len(part_bytes(raw, info.part)[0])


def test_nested_multiparts_keep_the_stdlib_part_numbers():
    inner = (
        b'Content-Type: multipart/alternative; boundary="IN"\r\n\r\n'
        b"--IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
        b"--IN\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=C3=BC=C3=9Fe</p>\r\n--IN--"
    )
    raw = multipart(inner, attachment(b"%PDF-1.4 " * 100, "=?utf-8?q?Angebot_=C3=BC.pdf?="))
    parsed = parse._fast_parse(raw)
    assert parsed.text == "Grüße" and parsed.html == "<p>Grüße</p>"
    [info] = parsed.attachments
    assert info.filename == "Angebot ü.pdf"
    assert part_bytes(raw, info.part)[0] == b"%PDF-1.4 " * 100
    same_result(raw)


def test_a_boundary_that_merely_starts_a_line_is_not_a_delimiter():
    text = b"Content-Type: text/plain\r\n\r\nline\r\n--XBnot a boundary\r\n--XB-- neither"
    raw = multipart(text)
    assert "--XBnot a boundary" in parse._fast_parse(raw).text
    same_result(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\nSubject: x\r\n\r\nbare\rCR",
        multipart(b"Content-Type: text/plain\r\n\r\nno close", boundary="B").replace(b"--B--", b""),
        multipart(b"Content-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\n\r\ninner"),
        b"From: a@example.com\r\nnot a header\r\n\r\nbody",
    ],
    ids=["bare-cr", "no-close-boundary", "message-part", "broken-header"],
)
def test_unusual_structure_goes_to_the_full_parser_with_the_same_headers(raw):
    fast_headers = parse.ParsedMessage()
    parse._read_headers(parse._RawHeaders(_raw_items(raw)), fast_headers)
    parsed = parse_message(raw)
    assert parsed.subject == fast_headers.subject
    assert parsed.participants == fast_headers.participants


def _raw_items(raw: bytes) -> list[tuple[str, str]]:
    return BytesParser(policy=policy.compat32).parsebytes(raw).raw_items()


# -- headers: crmail's decoding against policy.default ------------------------------------

UNSTRUCTURED = (
    "subject",
    "comments",
    "keywords",
    "x-mailer",
    "organization",
    "content-description",
)


def _policy_default_value(header: object) -> str | None:
    text = str(header)
    return None if "\ufffd" in text or "\udcfe" in text else text


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_rfc2047_decoding_of_unstructured_headers_matches_policy_default(path):
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    for name, raw_value in msg.raw_items():
        if name.lower() not in UNSTRUCTURED:
            continue
        try:
            expected = _policy_default_value(msg.policy.header_fetch_parse(name, raw_value))
        except Exception:
            continue  # policy.default cannot read it: crmail's own reading has no peer
        if expected is None:
            continue
        ours = parse.decode_words(parse._unfold(raw_value))
        assert " ".join(ours.split()) == " ".join(expected.split()), (name, raw_value)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_display_names_and_addresses_match_policy_default(path):
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    parsed = parse_message(path.read_bytes())
    for role in parse.ADDRESS_HEADERS:
        try:
            headers = msg.get_all(role) or []
            expected = [
                (" ".join(a.display_name.split()), a.addr_spec.lower())
                for h in headers
                for a in h.addresses
            ]
        except Exception:
            continue
        if any("\ufffd" in name for name, _ in expected):
            continue
        ours = [(p.name, p.address) for p in parsed.participants if p.role == role and p.valid]
        for name, address in expected:
            if not name or "@" not in address:
                continue  # "addr (Comment)": policy.default drops the comment, crmail keeps it
            assert (name, address) in ours, (role, ours)


@pytest.mark.parametrize(
    "value",
    [
        "Ada Lovelace <ada@example.com>",
        '"Lovelace, Ada" <ada@example.com>, bob@example.org',
        "John X. Doe <jxd@example.com>",
        "=?utf-8?q?J=C3=BCrgen?= <j@example.de>,  carol@example.net ",
        '"" Angles " Puglisi" <angles@example.com>',
        "bob@example.org (Bob Example)",
        "undisclosed-recipients:;",
        "<route@example.com>",
        "a@b, , c@d",
        "Dr. Who <who@example.com>",
        "first.last@sub.example.com",
        "x@y@z <q@r>",
    ],
)
def test_split_addresses_gives_what_getaddresses_gives(value):
    expected = [(" ".join(n.split()), a) for n, a in getaddresses([value])]
    assert [(" ".join(n.split()), a) for n, a in parse.split_addresses([value])] == expected


def test_an_encoded_word_glued_to_text_is_decoded_without_extra_spaces():
    raw = b"From: David H=?ISO-8859-1?B?9g==?=hn <dh@example.at>\r\n\r\n"
    assert parse_message(raw).participants[0].name == "David Höhn"


def test_a_fast_path_failure_falls_back_to_the_full_parser(monkeypatch):
    def broken(raw):
        raise IndexError("a case the fast path did not foresee")

    monkeypatch.setattr(parse, "_fast_parse", broken)
    parsed = parse_message(b"From: Ada <ada@example.com>\r\nSubject: still read\r\n\r\nbody")
    assert (parsed.subject, parsed.text) == ("still read", "body")


DECODED_NUL = (
    b"From: =?utf-8?q?Ann=00_Lee?= <ann@example.com>\r\nTo: bob@example.com\r\n"
    b"Subject: =?iso-8859-1?B?aGkAdGhlcmU=?=\r\nMessage-ID: <n@example.com>\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\ntext=00body\r\n--b\r\n"
    b"Content-Type: text/html; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode("<p>x\x00y</p>".encode("utf-16"))
    + b"\r\n--b\r\n"
    b"Content-Type: application/pdf; name*=utf-8''a%00.pdf\r\n"
    b"Content-Disposition: attachment\r\n\r\n%PDF\r\n--b--\r\n"
)


@pytest.mark.parametrize("headers", [True, False])
def test_nul_decoded_from_a_message_without_nul_bytes_leaves_no_trace(headers):
    """Quoted-printable ``=00``, base64, an encoded word, UTF-16: the raw bytes hold no NUL,
    what they decode to does (PostgreSQL refused to save such a body)."""
    assert b"\x00" not in DECODED_NUL
    out = parse_message(DECODED_NUL, headers=headers)
    assert "textbody" in out.text and "xy" in out.html
    assert "\x00" not in repr(out)
    if headers:
        assert out.subject == "hithere"
        assert "\x00" not in repr(parse_headers(DECODED_NUL))


@pytest.mark.parametrize("multipart", [False, True])
def test_nul_bytes_leave_no_trace_in_what_parsing_finds(multipart):
    head = (
        b"From: Ann\x00 <ann\x00@example.com>\r\nTo: bob@example.com\r\n"
        b"Subject: hi\x00there\r\nMessage-ID: <id\x00@example.com>\r\n"
        b"In-Reply-To: <p\x00@example.com>\r\nReferences: <r\x00@example.com>\r\n"
    )
    if multipart:
        body = (
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain\r\n\r\ntext\x00body\r\n--b\r\n"
            b'Content-Type: application/pdf; name="a\x00.pdf"\r\n'
            b"Content-Disposition: attachment\r\nContent-ID: <c\x00@x>\r\n\r\n%PDF\x00\r\n--b--\r\n"
        )
    else:
        body = b"\r\ntext\x00body\r\n"
    out = parse_message(head + body)
    assert out.message_id == "id@example.com"
    assert (out.in_reply_to, out.references) == ("p@example.com", ["r@example.com"])
    assert out.subject == "hithere" and "textbody" in out.text
    assert "\x00" not in repr(out)


@given(
    st.lists(
        st.one_of(
            st.text(st.characters(codec="utf-8"), max_size=30),
            st.sampled_from([" ", "\n", "\r\n", "\t", "\x1c", "\u2003", "\u3000", "\xa0"]),
        ),
        max_size=60,
    )
)
def test_a_snippet_is_the_start_of_the_text_with_its_white_space_collapsed(parts):
    """The list's snippet (read only as far as it reaches) is what collapsing the whole
    body's white space and cutting it gives, whatever the white space."""
    text = "".join(parts)
    assert parse.snippet(text) == " ".join(text.split())[: parse.SNIPPET]
