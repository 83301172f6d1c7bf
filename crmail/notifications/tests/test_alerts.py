"""Customer mail alerts against a real Dovecot: mail is delivered with the harness (doveadm
is the oracle that it is there), synced, linked through the outbox, and told of once."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from crmail.events import dispatch
from crmail.events.models import ConsumerState
from crmail.linking.models import Link
from crmail.mailboxes.tasks import run_sync
from crmail.notifications import actions, queries
from crmail.notifications.models import Notification
from tests import factories as f

pytestmark = pytest.mark.django_db
_n = itertools.count(1)


def mail(
    sender: str,
    to: str = "rep@crmail.test",
    *,
    subject: str = "Quote for May",
    cc: str = "",
    sent: datetime | None = None,
) -> bytes:
    n = next(_n)
    lines = [
        f"From: {sender}",
        f"To: {to}",
        *([f"Cc: {cc}"] if cc else []),
        f"Subject: {subject}",
        f"Message-ID: <alert{n}.{timezone.now().timestamp()}@customer.test>",
        f"Date: {format_datetime(sent or timezone.now())}",
        "",
        f"Could you send the quote for the May order? ({n})",
        "",
    ]
    return "\r\n".join(lines).encode()


@pytest.fixture
def rep_inbox(dovecot, dovecot_user, org):  # type: ignore[no-untyped-def]
    """The rep's mailbox on Dovecot: (server, login, mailbox)."""
    login, password = dovecot_user
    return dovecot, login, f.mailbox(dovecot, login, password, owner=org.rep)


@pytest.fixture
def sync(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Sync a mailbox; the outbox's consumers (linking, then alerts) run at its commits."""

    def run(mailbox) -> None:  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            run_sync(mailbox)

    return run


def jane(owner):  # type: ignore[no-untyped-def]
    return f.contact(owner, "jane@acme.test", first_name="Jane", last_name="Quinn")


def test_mail_from_a_contact_tells_the_mailbox_owner_once(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    contact = jane(org.rep)
    server.deliver(login, mail("Jane Quinn <jane@acme.test>"))
    assert len(server.messages(login)) == 1
    sync(mailbox)

    (row,) = Notification.objects.all()
    assert row.user == org.rep
    assert row.title == "New mail from Jane Quinn (Contact): Quote for May"
    assert (row.module, row.record_id) == ("contacts", contact.pk)
    assert row.excerpt.startswith("Could you send the quote")
    assert row.read_at is None and queries.unread_count(org.rep) == 1

    # The same events handled again (a crash before the position moved) add nothing,
    # and neither does a sync with nothing new.
    ConsumerState.objects.filter(name="alerts").update(position=0)
    dispatch.run("alerts")
    sync(mailbox)
    assert Notification.objects.count() == 1


def test_mail_from_a_lead_is_told_too(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    lead = f.lead(org.rep, "sam@prospect.test", first_name="Sam", last_name="Lee")
    server.deliver(login, mail("sam@prospect.test", subject="Interested"))
    sync(mailbox)
    (row,) = Notification.objects.all()
    assert row.title == "New mail from Sam Lee (Lead): Interested"
    assert (row.module, row.record_id) == ("leads", lead.pk)


def test_old_mail_found_by_a_first_sync_is_not_told(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    jane(org.rep)
    now = timezone.now()
    server.deliver(
        login, mail("jane@acme.test", subject="Last month", sent=now - timedelta(days=30))
    )
    # Delivered hours before the mailbox was connected: old mail however recent.
    server.deliver(
        login, mail("jane@acme.test", subject="This morning", sent=now - timedelta(hours=3))
    )
    sync(mailbox)
    assert Link.objects.filter(module="contacts").count() == 2  # linked, but not news
    assert not Notification.objects.exists()

    server.deliver(login, mail("jane@acme.test", subject="Just now"))
    sync(mailbox)
    assert [n.title for n in Notification.objects.all()] == [
        "New mail from Jane Quinn (Contact): Just now"
    ]


def test_no_alerts_when_the_mailbox_switch_is_off(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    mailbox.customer_alerts = False
    mailbox.save()
    jane(org.rep)
    server.deliver(login, mail("jane@acme.test"))
    sync(mailbox)
    assert Link.objects.filter(module="contacts").count() == 1
    assert not Notification.objects.exists()


def test_mail_from_an_unknown_address_or_a_colleague_is_not_told(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    jane(org.rep)
    # A colleague someone also keeps as a contact is still a colleague.
    f.contact(org.rep, "peer@crmail.test", first_name="Pia", last_name="Peer")
    server.deliver(login, mail("stranger@nowhere.test"))
    server.deliver(login, mail("Pia Peer <peer@crmail.test>", cc="jane@acme.test"))
    sync(mailbox)
    assert Link.objects.filter(module="contacts").count() == 2  # Pia's mail is on both
    assert not Notification.objects.exists()


def test_a_record_the_owner_may_not_view_is_not_named(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    jane(org.outsider_manager)  # another branch's contact: the rep may not view it
    server.deliver(login, mail("Jane Quinn <jane@acme.test>"))
    sync(mailbox)
    (row,) = Notification.objects.all()
    assert row.title == "New mail from jane@acme.test: Quote for May"
    assert row.module == "" and row.record_id is None


def test_a_copy_reaching_a_second_inbox_tells_its_owner(org, dovecot, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    peer_login, peer_password = dovecot.new_user()
    peer_box = f.mailbox(dovecot, peer_login, peer_password, owner=org.peer)
    jane(org.rep)
    raw = mail("jane@acme.test", to="rep@crmail.test, peer@crmail.test")
    server.deliver(login, raw)
    dovecot.deliver(peer_login, raw)
    sync(mailbox)
    assert [n.user for n in Notification.objects.all()] == [org.rep]
    # The same message, stored once, is already linked: its new copy tells the peer.
    sync(peer_box)
    assert sorted(n.user.email for n in Notification.objects.all()) == [
        "peer@crmail.test",
        "rep@crmail.test",
    ]


def test_another_user_never_sees_or_marks_ones_notifications(org, rep_inbox, sync):
    server, login, mailbox = rep_inbox
    jane(org.rep)
    server.deliver(login, mail("jane@acme.test"))
    sync(mailbox)
    (row,) = Notification.objects.all()
    assert list(queries.feed(org.peer)) == [] and queries.unread_count(org.peer) == 0
    assert list(queries.feed(org.admin)) == []
    assert actions.mark_read(org.peer, [row.pk]) == 0
    assert actions.mark_read(org.admin) == 0
    row.refresh_from_db()
    assert row.read_at is None
    assert actions.mark_read(org.rep, [row.pk]) == 1
    assert queries.unread_count(org.rep) == 0
