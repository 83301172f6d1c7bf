"""A user's mail as an mboxrd file: read back by Python's ``mailbox`` and ``email`` modules
(the mail client here), byte for byte, each message once, oldest first."""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crmail.mail import mbox
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Folder, Location, Mailbox, SentMessage
from crmail.mailboxes.queries import user_mail
from crmail.people.models import User
from crmail.web.tests.mail_samples import PNG
from tests import factories as f

pytestmark = pytest.mark.django_db

BINARY = bytes(range(256)) * 4 + PNG
GARBAGE = b"\x00\xff\xfe not a message at all\nFrom the void\n\x80\x81 no headers\n"


def mime(subject: str, text: str, *, day: int, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ada Sender <ada@vendor.example>"
    msg["To"] = "leaver@crmail.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, day, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@vendor.example>"
    msg.set_content(text)
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="data.bin"
        )
    return msg.as_bytes()


FROM_LINES = "Hello,\nFrom now on we ship on Mondays.\n>From the quoted reply\n>>From deeper\n"


def place(message: Message, box: Mailbox, folder: str = "INBOX") -> None:
    where, _ = Folder.objects.get_or_create(
        mailbox=box, remote_id=folder, defaults={"name": folder}
    )
    Location.objects.create(mailbox=box, folder=where, message=message, remote_id=str(message.pk))


@dataclass
class Mail:
    leaver: User
    raws: dict[str, bytes]  # subject (or "garbage") -> the raw bytes stored


def build() -> Mail:
    """The leaver's mail: five messages in an active mailbox (one in two folders), one in a
    mailbox no longer active, one sent from crmail, one unparseable; a colleague's too."""
    leaver = f.user("leaver@crmail.test")
    colleague = f.user("colleague@crmail.test")
    active = Mailbox.objects.create(owner=leaver, email=leaver.email)
    old = Mailbox.objects.create(owner=leaver, email="old@crmail.test", is_active=False)
    theirs = Mailbox.objects.create(owner=colleague, email=colleague.email)
    raws = {
        "From lines": mime("From lines", FROM_LINES, day=1),
        "Windows": mime("Windows", "line one\nline two\n", day=2).replace(b"\n", b"\r\n"),
        "Attachment": mime("Attachment", "see the file", day=3, attachment=BINARY),
        "Two folders": mime("Two folders", "filed twice", day=4),
        "Old mailbox": mime("Old mailbox", "from before", day=5),
        "Sent from crmail": mime("Sent from crmail", "our offer", day=6),
    }
    stored = {subject: store_raw(raw) for subject, raw in raws.items()}
    for subject in ("From lines", "Windows", "Attachment", "Two folders"):
        place(stored[subject], active)
    place(stored["Two folders"], active, "Archive")
    place(stored["Old mailbox"], old)
    SentMessage.objects.create(
        message=stored["Sent from crmail"], sender=leaver, from_address=leaver.email
    )
    parse_stored(list(stored.values()))
    garbage = store_raw(GARBAGE)
    Message.objects.filter(pk=garbage.pk).update(parse_state="failed")
    place(garbage, active, "Junk")
    raws["garbage"] = GARBAGE
    place(store_raw(mime("Not mine", "colleague's", day=7)), theirs)
    return Mail(leaver, raws)


def write(user: User, path: Path) -> mailbox.mbox:
    with path.open("wb") as out:
        for chunk in mbox.write_mbox(user_mail(user)):
            out.write(chunk)
    return mailbox.mbox(path, create=False)


def unquoted(content: bytes) -> bytes:
    """An mboxrd entry's content with one ``>`` taken off each ``>+From `` line."""
    return re.sub(rb"^>(>*From )", rb"\1", content, flags=re.MULTILINE)


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def test_every_message_comes_back_byte_for_byte_once_oldest_first(tmp_path):
    mail = build()
    box = write(mail.leaver, tmp_path / "leaver.mbox")
    contents = [unquoted(box.get_bytes(key)) for key in box.iterkeys()]
    expected = [lf(mail.raws[s]) for s in mail.raws if s != "garbage"]
    assert contents[:-1] == expected  # by date; the unparseable one has only its arrival
    assert contents[-1] == GARBAGE
    assert len(box) == 7  # the message in two folders once, the colleague's not at all


def test_headers_and_bodies_read_back_with_the_email_parser(tmp_path):
    mail = build()
    box = write(mail.leaver, tmp_path / "leaver.mbox")
    parser = BytesParser(policy=policy.default)
    parsed = {}
    for key in box.iterkeys():
        msg = parser.parsebytes(unquoted(box.get_bytes(key)))
        parsed[str(msg["Subject"] or "garbage")] = msg
    assert set(parsed) == set(mail.raws)
    for subject in ("From lines", "Windows", "Attachment", "Two folders", "Sent from crmail"):
        msg = parsed[subject]
        assert msg["Message-ID"] == f"<{subject.replace(' ', '-')}@vendor.example>"
    assert parsed["From lines"].get_body().get_content() == FROM_LINES
    assert parsed["Windows"].get_body().get_content() == "line one\nline two\n"
    [attachment] = parsed["Attachment"].iter_attachments()
    assert attachment.get_filename() == "data.bin"
    assert attachment.get_content() == BINARY


def test_the_separator_lines_follow_rfc_4155(tmp_path):
    mail = build()
    path = tmp_path / "leaver.mbox"
    box = write(mail.leaver, path)
    first = box[box.keys()[0]]
    assert first.get_from() == "ada@vendor.example Sun Mar  1 09:30:00 2026"
    last = box[box.keys()[-1]]
    assert last.get_from().startswith("MAILER-DAEMON ")
    data = path.read_bytes()
    assert b"\r" not in data  # CRLF normalised to LF (the attachment is base64)
    assert b"\n>From now on we ship on Mondays.\n>>From the quoted reply\n>>>From deeper\n" in data
    separators = re.findall(rb"^From .*$", data, flags=re.MULTILINE)
    assert len(separators) == 7  # no message line passes for a separator
    assert data.endswith(b"\n\n")
    assert re.search(rb"[^\n]\nFrom ", data) is None  # an empty line before each separator


def test_raw_bytes_are_read_in_batches(tmp_path, monkeypatch):
    mail = build()
    whole = b"".join(mbox.write_mbox(user_mail(mail.leaver)))
    monkeypatch.setattr(mbox, "BATCH_MESSAGES", 2)
    seen: list[mbox.Progress] = []
    with CaptureQueriesContext(connection) as queries:
        batched = b"".join(mbox.write_mbox(user_mail(mail.leaver), seen.append))
    assert batched == whole
    assert [p.messages for p in seen] == [2, 4, 6, 7]
    assert seen[-1].bytes == len(whole)
    raw_reads = [q for q in queries if "blobs_blob" in q["sql"]]
    assert len(raw_reads) == 4


def test_a_user_without_mail_gets_an_empty_file():
    assert b"".join(mbox.write_mbox(user_mail(f.user()))) == b""


@pytest.mark.parametrize(
    ("raw", "content"),
    [
        (b"Subject: x\r\n\r\nFrom here\r\n", b"Subject: x\n\n>From here\n"),
        (b"Subject: x\n\nno newline at the end", b"Subject: x\n\nno newline at the end\n"),
        (b"From someone\nSubject: x\n\n>>From y\n", b">From someone\nSubject: x\n\n>>>From y\n"),
        (
            b"Subject: x\n\nFrom: not a separator\nFromage\n",
            b"Subject: x\n\nFrom: not a separator\nFromage\n",
        ),
    ],
)
def test_quoting(raw, content):
    assert mbox.quote(raw) == content


def test_separator_and_filename():
    moment = datetime(2026, 11, 9, 23, 5, 7, tzinfo=UTC)
    assert mbox.separator("a@b.example", moment) == b"From a@b.example Mon Nov  9 23:05:07 2026\n"
    in_paris = moment.astimezone(timezone(timedelta(hours=1)))
    assert mbox.separator("a@b.example", in_paris).endswith(b" Mon Nov  9 23:05:07 2026\n")
    assert mbox.separator("", moment).startswith(b"From MAILER-DAEMON ")
    assert mbox.separator("two words@x", moment).startswith(b"From MAILER-DAEMON ")
    assert mbox.separator("jörg@x.example", moment).startswith(b"From MAILER-DAEMON ")
    user = User(pk=5, email='o"dd name/..\\@x.example')
    assert mbox.backup_filename(user) == "o_dd_name_.._@x.example-mail.mbox"


@pytest.mark.django_db(transaction=True)
def test_streams_outside_a_transaction_as_a_web_response_does(tmp_path, monkeypatch):
    """A download streams after the view has returned, in autocommit: the message list is
    read through a (server-side, on PostgreSQL) cursor while raw bytes are read beside it."""
    mail = build()
    monkeypatch.setattr(mbox, "BATCH_MESSAGES", 2)
    box = write(mail.leaver, tmp_path / "leaver.mbox")
    assert len(box) == 7
