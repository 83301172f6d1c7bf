"""IMAP parsing and encoding on raw server bytes (no server, no I/O)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmail.mailboxes.drivers.base import AuthFailed, ConnectFailed, Throttled
from crmail.mailboxes.drivers.imap_errors import (
    APP_PASSWORD,
    WRONG_PASSWORD,
    command_failed,
    login_failed,
    socket_failed,
    tls_verify_failed,
)
from crmail.mailboxes.drivers.imap_protocol import (
    ListEntry,
    ProtocolError,
    assign_roles,
    chunk_uids,
    compact_uids,
    decode_mailbox,
    decode_mutf7,
    encode_mutf7,
    expand_uid_set,
    flags_from_imap,
    flags_to_imap,
    format_internal_date,
    line_may_have_literal,
    literal_size,
    message_id_from_header,
    parse_fetch,
    parse_internal_date,
    parse_list,
    parse_response,
    quote,
    search_uids,
    uid_mapping,
    uid_set_size,
    vanished_set,
    xoauth2_initial_response,
)

pytestmark = pytest.mark.database_independent  # no database: one pass runs it

# -- modified UTF-7 (RFC 3501 §5.1.3) --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("INBOX", "INBOX"),
        ("Angebote/Überfällig", "Angebote/&ANw-berf&AOQ-llig"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501's example
        ("受信トレイ", "&U9dP4TDIMOwwpA-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_mutf7_known_encodings(text: str, wire: str):
    assert encode_mutf7(text) == wire
    assert decode_mutf7(wire) == text
    assert decode_mutf7(wire.encode()) == text


@given(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"])))
def test_mutf7_round_trips_any_text(text: str):
    encoded = encode_mutf7(text)
    assert encoded.isascii()
    assert decode_mutf7(encoded) == text


def test_mutf7_refuses_lone_surrogates():
    with pytest.raises(ValueError):
        encode_mutf7("Ordner\ud800")


@pytest.mark.parametrize("bad", ["&", "&Jjo", "&A-", "&***-"])
def test_mutf7_malformed_raises(bad: str):
    with pytest.raises(ValueError):
        decode_mutf7(bad)


def test_mailbox_names_fall_back_to_utf8():
    assert decode_mailbox("Überfällig".encode()) == "Überfällig"
    assert decode_mailbox(b"Sent &broken") == "Sent &broken"


# -- responses -------------------------------------------------------------------------------


def test_parse_tagged_and_untagged_status_with_codes():
    r = parse_response([b"C3 OK [READ-ONLY] EXAMINE completed (0.001 + 0.000 secs)."])
    assert (r.tag, r.kind, r.code) == (b"C3", b"OK", b"READ-ONLY")
    r = parse_response([b"* OK [UIDVALIDITY 1795401104] UIDs valid"])
    assert r.tag is None and r.code == b"UIDVALIDITY" and r.code_data == b"1795401104"
    r = parse_response([b"C1 NO [AUTHENTICATIONFAILED] Authentication failed."])
    assert r.kind == b"NO" and r.code == b"AUTHENTICATIONFAILED"
    assert r.text_str() == "Authentication failed."
    r = parse_response([b"+ idling"])
    assert r.tag == b"+" and r.text == b"idling"
    r = parse_response([b"* 23 EXISTS"])
    assert (r.kind, r.number) == (b"EXISTS", 23)


def test_status_text_ending_in_braces_is_not_a_literal():
    assert not line_may_have_literal(b"* OK [ALERT] see {5}")
    assert not line_may_have_literal(b"C4 NO oops {5}")
    assert line_may_have_literal(b"* 1 FETCH (BODY[] {5}")
    assert literal_size(b"* 1 FETCH (BODY[] {5}") == 5
    assert literal_size(b"* 1 FETCH (BODY[] {5+}") == 5
    assert literal_size(b"* 1 FETCH (UID 4)") is None


def test_parse_fetch_with_literal_body():
    body = b'From: a@example.org\r\nSubject: (tricky) "quotes" {3}\r\n\r\nHi\r\n'
    segments = [
        b'* 12 FETCH (UID 34 FLAGS (\\Seen $Forwarded \\Recent) INTERNALDATE "17-Jul-1996 '
        b'02:44:25 -0700" RFC822.SIZE %d MODSEQ (917162500) BODY[] {%d}' % (len(body), len(body)),
        body,
        b")",
    ]
    item = parse_fetch(parse_response(segments))
    assert item.seq == 12 and item.uid == 34 and item.size == len(body)
    assert item.body == body
    assert item.modseq == 917162500
    assert flags_from_imap(item.flags) == {"seen", "$Forwarded"}
    assert item.internal_date == datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=timezone(timedelta(hours=-7))
    )


def test_parse_fetch_items_after_the_literal_and_header_section():
    segments = [
        b"* 3 FETCH (RFC822.SIZE 2048 BODY[HEADER.FIELDS (MESSAGE-ID)] {33}",
        b"Message-ID: <a@b.example>\r\n\r\n\r\n",
        b" UID 9 FLAGS ())",
    ]
    item = parse_fetch(parse_response(segments))
    assert (item.uid, item.size, item.flags) == (9, 2048, [])
    assert message_id_from_header(item.body or b"") == "a@b.example"


def test_parse_fetch_quoted_and_nil_bodies():
    item = parse_fetch(parse_response([b'* 1 FETCH (UID 5 BODY[] "tiny \\"q\\"")']))
    assert item.body == b'tiny "q"'
    item = parse_fetch(parse_response([b'* 1 FETCH (UID 5 BODY[] "")']))
    assert item.body == b""
    item = parse_fetch(parse_response([b"* 1 FETCH (UID 5 BODY[] NIL)"]))
    assert item.body is None


def test_parse_fetch_flags_only_as_sent_unsolicited():
    item = parse_fetch(parse_response([b"* 4 FETCH (UID 8 MODSEQ (12) FLAGS (\\Flagged))"]))
    assert (item.uid, item.modseq, item.body) == (8, 12, None)
    assert flags_from_imap(item.flags) == {"flagged"}


def test_unbalanced_parentheses_raise():
    with pytest.raises(ProtocolError):
        parse_response([b"* 1 FETCH (UID 5"])
    with pytest.raises(ProtocolError):
        parse_response([b"* 1 FETCH (UID 5))"])


def test_parse_list_responses():
    e = parse_list(parse_response([b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"']))
    assert (e.name, e.delimiter, e.special_use, e.selectable) == ("Sent Items", "/", "sent", True)
    e = parse_list(parse_response([b'* LIST (\\Noselect \\HasChildren) "." "[Gmail]"']))
    assert not e.selectable and e.name == "[Gmail]"
    e = parse_list(parse_response([b'* LIST (\\HasNoChildren) "/" Angebote/&ANw-berf&AOQ-llig']))
    assert e.name == "Angebote/Überfällig" and e.raw == b"Angebote/&ANw-berf&AOQ-llig"
    e = parse_list(parse_response([b"* LIST (\\NonExistent) NIL {5}", b"inbox", b""]))
    assert e.name == "INBOX" and e.delimiter is None and not e.selectable
    e = parse_list(parse_response([b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))']))
    assert e.name == "Foo"


def _entry(name: str, *attrs: str, delim: str = "/") -> ListEntry:
    return ListEntry(name.encode(), name, delim, frozenset(a.upper().encode() for a in attrs))


def test_roles_from_special_use_win_over_names():
    entries = [
        _entry("INBOX"),
        _entry("Sent"),  # a plain folder that happens to be called Sent
        _entry("Gesendete Objekte", "\\Sent"),
        _entry("Papierkorb", "\\Trash"),
        _entry("[Gmail]/All Mail", "\\All"),
        _entry("Kunden"),
    ]
    roles = assign_roles(entries)
    assert roles == {
        b"INBOX": "inbox",
        b"Gesendete Objekte": "sent",
        b"Papierkorb": "trash",
        b"[Gmail]/All Mail": "archive",
    }


def test_roles_by_convention_without_special_use():
    entries = [
        _entry("INBOX", delim="."),
        _entry("INBOX.Sent Messages", delim="."),
        _entry("INBOX.Deleted Items", delim="."),
        _entry("INBOX.Junk E-mail", delim="."),
        _entry("INBOX.Drafts", delim="."),
        _entry("INBOX.Archive", delim="."),
        _entry("INBOX.Spam", delim="."),  # Junk E-mail came first… but "junk" ranks higher
        _entry("Trash", "\\Noselect"),
    ]
    roles = assign_roles(entries)
    assert roles[b"INBOX.Sent Messages"] == "sent"
    assert roles[b"INBOX.Deleted Items"] == "trash"
    assert roles[b"INBOX.Drafts"] == "drafts"
    assert roles[b"INBOX.Archive"] == "archive"
    assert roles[b"INBOX.Spam"] == "junk"  # "spam" ranks above "junk e-mail"
    assert b"INBOX.Junk E-mail" not in roles
    assert b"Trash" not in roles  # not selectable


def test_gmail_names_by_convention():
    entries = [_entry("INBOX"), _entry("[Gmail]/Sent Mail"), _entry("[Gmail]/Spam")]
    roles = assign_roles(entries)
    assert roles[b"[Gmail]/Sent Mail"] == "sent" and roles[b"[Gmail]/Spam"] == "junk"


def test_search_and_esearch_and_vanished():
    assert search_uids(parse_response([b"* SEARCH 2 84 882"])) == [2, 84, 882]
    assert search_uids(parse_response([b"* SEARCH"])) == []
    r = parse_response([b'* ESEARCH (TAG "C5") UID ALL 1:3,5,9:10'])
    assert search_uids(r) == [1, 2, 3, 5, 9, 10]
    assert search_uids(parse_response([b'* ESEARCH (TAG "C5") UID'])) == []
    assert vanished_set(parse_response([b"* VANISHED (EARLIER) 41,43:45"])) == (
        True,
        b"41,43:45",
    )
    assert vanished_set(parse_response([b"* VANISHED 7"])) == (False, b"7")


def test_uid_sets():
    assert compact_uids([5, 1, 2, 3, 7, 8, 3]) == "1:3,5,7:8"
    assert compact_uids([]) == ""
    assert expand_uid_set(b"1:3,5,9:7") == [1, 2, 3, 5, 7, 8, 9]
    assert expand_uid_set("1:4294967295", below=4) == [1, 2, 3]
    assert uid_set_size(b"1:100,200") == 101
    assert uid_mapping(b"4:5,9", b"100:102") == {4: 100, 5: 101, 9: 102}
    chunks = list(chunk_uids(list(range(1, 26)), 10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    chunks = list(chunk_uids([10**9 + i * 2 for i in range(100)], 1000, max_chars=110))
    assert all(len(compact_uids(c)) <= 110 for c in chunks) and sum(map(len, chunks)) == 100


def test_flags_mapping():
    assert flags_from_imap([b"\\Seen", b"\\ANSWERED", b"\\Recent", b"$Label1", b"\\Draft"]) == {
        "seen",
        "answered",
        "$Label1",
        "draft",
    }
    assert flags_to_imap({"seen", "flagged", "$Forwarded"}) == ["$Forwarded", "\\Flagged", "\\Seen"]
    for bad in ("with space", "paren(", "\\Recent", "", "ümlaut"):
        with pytest.raises(ValueError):
            flags_to_imap([bad])


def test_internal_dates():
    assert parse_internal_date(b" 1-Feb-2024 09:05:00 +0100") == datetime(
        2024, 2, 1, 9, 5, tzinfo=timezone(timedelta(hours=1))
    )
    assert parse_internal_date(b"garbage") is None
    when = datetime(2024, 2, 1, 8, 5, 3, tzinfo=UTC)
    assert format_internal_date(when) == "01-Feb-2024 08:05:03 +0000"
    assert parse_internal_date(format_internal_date(when).encode()) == when


def test_message_id_extraction():
    assert message_id_from_header(b"Message-ID: <x@y>\r\n\r\n") == "x@y"
    assert message_id_from_header(b"message-id:\r\n <folded@y>\r\n\r\n") == "folded@y"
    assert message_id_from_header(b"Message-Id: bare-id@host\r\n") == "bare-id@host"
    assert message_id_from_header(b"\r\n") == ""


def test_quote_and_xoauth2():
    assert quote(b'pa"ss\\word') == b'"pa\\"ss\\\\word"'
    assert quote("pässword".encode()) is None  # 8-bit: literal only
    assert quote(b"a\r\nb") is None
    assert xoauth2_initial_response("alice", "tok") == (b"dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==")


# -- failures in words ---------------------------------------------------------------------


def _no(text: bytes) -> object:
    return parse_response([b"C2 NO " + text])


def test_wrong_password_words():
    err = login_failed(
        "mail.example.org", _no(b"[AUTHENTICATIONFAILED] Authentication failed."), oauth=False
    )
    assert isinstance(err, AuthFailed) and err.kind == "auth"
    assert str(err) == WRONG_PASSWORD


def test_app_password_hints_from_server_text_and_known_hosts():
    err = login_failed(
        "imap.example.net",
        _no(b"[ALERT] Application-specific password required: https://x (Failure)"),
        oauth=False,
    )
    assert err.kind == "app_password" and APP_PASSWORD in str(err)
    err = login_failed(
        "imap.gmail.com", _no(b"[AUTHENTICATIONFAILED] Invalid credentials"), oauth=False
    )
    assert err.kind == "app_password" and str(err).startswith(WRONG_PASSWORD)
    err = login_failed(
        "mail.example.org", _no(b"[ALERT] Please log in via your web browser"), oauth=False
    )
    assert err.kind == "app_password"
    err = login_failed("mail.example.org", _no(b"[ALERT] Account locked by admin"), oauth=False)
    assert err.kind == "auth" and "Account locked by admin" in str(err)


def test_oauth_and_throttle_words():
    err = login_failed(
        "imap.gmail.com", _no(b"[AUTHENTICATIONFAILED] Invalid credentials"), oauth=True
    )
    assert err.kind == "oauth_revoked"
    err = login_failed(
        "imap.gmail.com", _no(b"[UNAVAILABLE] Too many simultaneous connections"), oauth=False
    )
    assert isinstance(err, Throttled)
    err = command_failed(
        "fetching", _no(b"[OVERQUOTA] Account exceeded command or bandwidth limits")
    )
    assert isinstance(err, Throttled)
    err = command_failed("opening the folder X", _no(b"[NONEXISTENT] Mailbox doesn't exist: X"))
    assert err.kind == "folder"


def test_socket_failures_in_words():
    import socket

    assert socket_failed("h", 1, ConnectionRefusedError(), 5).kind == "refused"
    assert socket_failed("h", 1, TimeoutError(), 5).kind == "timeout"
    assert socket_failed("nowhere.invalid", 1, socket.gaierror(-2, "x"), 5).kind == "unreachable"
    err = socket_failed("h", 1, ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version"), 5)
    assert isinstance(err, ConnectFailed) and err.kind == "tls" and "handshake" in str(err)


def test_certificate_failures_in_words():
    def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
        exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
        exc.verify_code, exc.verify_message = code, message
        return exc

    err = tls_verify_failed("h", cert_error(18, "self-signed certificate"))
    assert err.kind == "tls" and "allow self-signed certificate" in str(err)
    err = tls_verify_failed("mail.example.org", cert_error(62, "Hostname mismatch"))
    assert "mail.example.org" in str(err) and "self-signed" not in str(err)
    err = tls_verify_failed("h", cert_error(10, "certificate has expired"))
    assert "expired" in str(err) and "self-signed" not in str(err)
    err = tls_verify_failed("h", cert_error(20, "unable to get local issuer certificate"))
    assert "not trusted" in str(err) and "self-signed" not in str(err)
