"""Departed users (SPEC F12): the administrators' list, the mail backup, and what
deactivating a user does to their mail on a colleague's record."""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from crmail.crm.models import Contact
from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message, WaitingBody
from crmail.mail.store import store_raw
from crmail.mailboxes.models import Folder, Location, Mailbox, SentMessage
from crmail.people.models import ModuleDefault, User
from crmail.sharing import actions as sharing
from crmail.sharing.emails import record_emails
from tests import factories as f

pytestmark = pytest.mark.django_db

CUSTOMER = "jane@customer.test"


def mime(sender: str, to: str, subject: str, day: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 4, day, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@test>"
    msg.set_content(f"{subject}\nFrom the desk of someone\n")
    return msg.as_bytes()


@dataclass
class Leaving:
    admin: User
    mark: User  # the one who leaves; shares his mail with everyone
    claire: User  # his colleague, who may open the contact
    jane: Contact
    synced: list[Message]  # in Mark's Inbox
    sent: Message  # sent by Mark from crmail, its copy in his Sent folder


@pytest.fixture
def leaving(org, django_capture_on_commit_callbacks) -> Leaving:  # type: ignore[no-untyped-def]
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    mark, claire = org.rep, org.peer
    sharing.set_sharing(None, mark, mode="public", share_with=[])
    jane = f.contact(claire, CUSTOMER, first_name="Jane", last_name="Doe")
    box = Mailbox.objects.create(owner=mark, email=mark.email)
    inbox = Folder.objects.create(mailbox=box, remote_id="INBOX", name="Inbox", role="inbox")
    sent_folder = Folder.objects.create(mailbox=box, remote_id="Sent", name="Sent", role="sent")
    raws = [
        mime(CUSTOMER, mark.email, "Question about pricing", 1),
        mime(CUSTOMER, mark.email, "Follow up", 3),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        synced = [store_raw(raw) for raw in raws]
        sent = store_raw(mime(mark.email, CUSTOMER, "Our offer", 2))
        for n, message in enumerate(synced):
            Location.objects.create(mailbox=box, folder=inbox, message=message, remote_id=str(n))
        Location.objects.create(mailbox=box, folder=sent_folder, message=sent, remote_id="1")
        SentMessage.objects.create(
            message=sent, sender=mark, mailbox=box, from_address=mark.email, recipients=[CUSTOMER]
        )
        parse_stored([*synced, sent])
    return Leaving(org.admin, mark, claire, jane, synced, sent)


def on_janes_record(viewer: User, s: Leaving) -> set[int]:
    return set(record_emails(viewer, "contacts", s.jane.pk).values_list("pk", flat=True))


def set_active(client: Client, user: User, active: bool) -> None:
    url = reverse("web:user_set_active", args=[user.pk])
    response = client.post(url, {"active": "1" if active else "0"})
    assert response.status_code == 302


def test_deactivating_hides_synced_mail_from_colleagues_and_reactivating_brings_it_back(
    leaving, client_for
):
    s = leaving
    everything = {m.pk for m in s.synced} | {s.sent.pk}
    assert on_janes_record(s.claire, s) == everything
    admin = client_for(s.admin)
    set_active(admin, s.mark, False)
    assert on_janes_record(s.claire, s) == {s.sent.pk}  # sent from crmail stays
    api = Client()
    api.force_login(s.claire)
    listed = api.get(f"/api/v1/contacts/{s.jane.pk}/emails").json()
    assert {item["id"] for item in listed["items"]} == {s.sent.pk}
    set_active(admin, s.mark, True)
    assert on_janes_record(s.claire, s) == everything


def test_a_backup_keeps_a_deactivated_users_mail_on_the_records(leaving, client_for):
    s = leaving
    everything = {m.pk for m in s.synced} | {s.sent.pk}
    admin = client_for(s.admin)
    set_active(admin, s.mark, False)
    assert on_janes_record(s.claire, s) == {s.sent.pk}
    # A download that stops half-way takes no backup: the mail stays hidden.
    partial = sharing.take_backup(s.admin, s.mark)
    next(partial)
    partial.close()
    assert on_janes_record(s.claire, s) == {s.sent.pk}
    whole = admin.get(reverse("web:departed_backup", args=[s.mark.pk]))
    assert b"".join(whole.streaming_content).count(b"\nFrom ") == 2  # three messages
    assert on_janes_record(s.claire, s) == everything
    html = admin.get(reverse("web:departed")).content.decode()
    row = re.search(rf"<tr>\s*<td data-label=\"Name\">{s.mark.name}</td>.*?</tr>", html, re.S)
    cells = dict(re.findall(r'<td data-label="([^"]+)">(.*?)</td>', row.group(0), re.S))
    assert cells["Hidden from colleagues"] == "0"
    assert "by Ada Admin" in cells["Backup"] and "3 messages" in cells["Backup"]
    # Back, then gone again: a backup taken before this deactivation does not count.
    set_active(admin, s.mark, True)
    set_active(admin, s.mark, False)
    assert on_janes_record(s.claire, s) == {s.sent.pk}
    html = admin.get(reverse("web:departed")).content.decode()
    assert "None yet" in html


def test_the_departed_page_lists_deactivated_users_with_their_mail(leaving, client_for):
    s = leaving
    admin = client_for(s.admin)
    empty = admin.get(reverse("web:departed")).content.decode()
    assert "No deactivated users" in empty and s.mark.email not in empty
    assert "Departed users</a>" in empty  # in the Administration menu
    users_page = admin.get(reverse("web:users")).content.decode()
    assert reverse("web:departed") not in users_page.split("</header>")[1]
    set_active(admin, s.mark, False)
    html = admin.get(reverse("web:departed")).content.decode()
    assert "a deactivated user's synced mail no longer shows on records" in html
    assert "reactivating the user brings it back" in html
    row = re.search(rf"<tr>\s*<td data-label=\"Name\">{s.mark.name}</td>.*?</tr>", html, re.S)
    assert row is not None
    cells = dict(re.findall(r'<td data-label="([^"]+)">(.*?)</td>', row.group(0), re.S))
    assert cells["Email"] == s.mark.email
    assert cells["Mailboxes"] == "1"
    assert cells["Messages"] == "3"
    assert cells["Hidden from colleagues"] == "2"
    assert cells["Sent from crmail"] == "1"
    assert "<time datetime=" in cells["Deactivated"]
    backup = reverse("web:departed_backup", args=[s.mark.pk])
    assert backup == f"/settings/departed/{s.mark.pk}/backup.mbox"
    assert f'href="{backup}"' in html and "Download mail backup (.mbox)" in html
    assert f'href="{reverse("web:user_edit", args=[s.mark.pk])}"' in html
    assert s.claire.email not in html  # active users are not listed
    users_page = admin.get(reverse("web:users")).content.decode()
    assert f'<a href="{reverse("web:departed")}">Departed users</a> lists them' in users_page


def test_the_page_says_how_many_of_their_messages_have_no_body_in_crmail(leaving, client_for):
    """Mail that arrived while storage was full (its body on the mail server only) is
    counted, so an administrator knows a backup holds its header section only."""
    s = leaving
    admin = client_for(s.admin)
    set_active(admin, s.mark, False)
    WaitingBody.objects.create(message=s.synced[1], headers=b"Subject: Follow up\r\n\r\n")
    html = admin.get(reverse("web:departed")).content.decode()
    row = re.search(rf"<tr>\s*<td data-label=\"Name\">{s.mark.name}</td>.*?</tr>", html, re.S)
    assert row is not None
    cells = dict(re.findall(r'<td data-label="([^"]+)">(.*?)</td>', row.group(0), re.S))
    assert cells["Messages"] == '3 <span class="muted">(1 without the body)</span>'
    assert "X-Crmail-Body-Waiting" in html  # the help says how a backup holds them


def test_the_backup_downloads_every_message_as_an_mbox(leaving, client_for, tmp_path: Path):
    s = leaving
    admin = client_for(s.admin)
    set_active(admin, s.mark, False)
    response = admin.get(reverse("web:departed_backup", args=[s.mark.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/mbox"
    assert response["Content-Disposition"] == 'attachment; filename="rep@crmail.test-mail.mbox"'
    assert response["X-Content-Type-Options"] == "nosniff"
    path = tmp_path / "backup.mbox"
    path.write_bytes(b"".join(response.streaming_content))
    box = mailbox.mbox(path, create=False)
    subjects = [box[key]["Subject"] for key in box.iterkeys()]
    assert subjects == ["Question about pricing", "Our offer", "Follow up"]  # by date
    body = box[box.keys()[0]].get_payload()
    assert ">From the desk of someone" in body  # quoted in the file, mboxrd


def test_an_admin_may_back_up_an_active_user_too(leaving, client_for):
    s = leaving
    response = client_for(s.admin).get(reverse("web:departed_backup", args=[s.mark.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).count(b"\nFrom ") == 2  # three messages


def test_only_administrators_see_the_page_or_download(leaving, client_for):
    s = leaving
    claire = client_for(s.claire)
    assert claire.get(reverse("web:departed")).status_code == 403
    assert claire.get(reverse("web:departed_backup", args=[s.mark.pk])).status_code == 403
    assert "Departed users" not in claire.get(reverse("web:home")).content.decode()
    anonymous = Client().get(reverse("web:departed_backup", args=[s.mark.pk]))
    assert anonymous.status_code == 302 and "/sign-in/" in anonymous["Location"]
    missing = client_for(s.admin).get(reverse("web:departed_backup", args=[99999]))
    assert missing.status_code == 404
