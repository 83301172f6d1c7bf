"""The home page's start to the day: threads awaiting a reply, deals whose contacts wrote."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from crmail.mail.models import Message, Thread
from crmail.mailboxes.receivers import copy_message_fields
from crmail.sharing import today
from crmail.sharing.tests import build
from tests import factories as f

pytestmark = pytest.mark.django_db

NOW = build.START + timedelta(days=10)


def _mail(sender: str, to: str, *, days_ago: float, thread: Thread, **kw) -> Message:
    msg = build.message(sender, [to], **kw)
    Message.objects.filter(pk=msg.pk).update(
        date=NOW - timedelta(days=days_ago),
        from_address=sender,
        thread=thread,
        subject=f"{thread.subject} ({days_ago})",
    )
    msg.links.update(date=NOW - timedelta(days=days_ago))
    copy_message_fields([msg.pk])  # as the outbox's consumer does after parsing
    msg.refresh_from_db()
    return msg


def test_a_customer_thread_whose_last_message_came_in_days_ago_awaits_a_reply():
    org = f.org()
    customer = f.contact(org.rep, "ann@client.example")
    stranger = "news@shop.example"
    waiting, answered, fresh, unknown = (Thread.objects.create(subject=s) for s in "wafu")
    _mail(
        "ann@client.example",
        org.rep.email,
        days_ago=3,
        thread=waiting,
        on=[customer],
        in_mailboxes=[org.rep],
    )
    _mail(
        "ann@client.example",
        org.rep.email,
        days_ago=4,
        thread=answered,
        on=[customer],
        in_mailboxes=[org.rep],
    )
    _mail(
        org.rep.email,
        "ann@client.example",
        days_ago=2,
        thread=answered,
        on=[customer],
        sent_by=org.rep,
    )
    _mail(
        "ann@client.example",
        org.rep.email,
        days_ago=0.5,
        thread=fresh,
        on=[customer],
        in_mailboxes=[org.rep],
    )
    _mail(stranger, org.rep.email, days_ago=3, thread=unknown, in_mailboxes=[org.rep])

    result = today.awaiting_reply(org.rep, now=NOW)

    assert [m.thread_id for m in result.messages] == [waiting.pk]
    assert result.count == 1


def test_only_the_users_own_mail_counts_and_a_colleagues_private_answer_reveals_nothing():
    org = f.org()
    customer = f.contact(org.rep, "ann@client.example")
    thread = Thread.objects.create(subject="t")
    _mail(
        "ann@client.example",
        org.rep.email,
        days_ago=3,
        thread=thread,
        on=[customer],
        in_mailboxes=[org.rep, org.peer],
    )
    # The peer answered from their own mail program: not the rep's mail.
    _mail(
        org.peer.email,
        "ann@client.example",
        days_ago=2,
        thread=thread,
        on=[customer],
        in_mailboxes=[org.peer],
    )

    assert today.awaiting_reply(org.rep, now=NOW).count == 1
    assert today.awaiting_reply(org.peer, now=NOW).count == 0
    assert today.awaiting_reply(org.manager, now=NOW).count == 0


def test_mail_in_the_trash_does_not_wait_for_an_answer():
    org = f.org()
    customer = f.contact(org.rep, "ann@client.example")
    thread = Thread.objects.create(subject="t")
    msg = _mail(
        "ann@client.example",
        org.rep.email,
        days_ago=3,
        thread=thread,
        on=[customer],
        in_mailboxes=[org.rep],
    )
    assert today.awaiting_reply(org.rep, now=NOW).count == 1
    msg.locations.update(
        folder=msg.locations.first().mailbox.folders.create(
            remote_id="Trash", name="Trash", role="trash"
        )
    )
    assert today.awaiting_reply(org.rep, now=NOW).count == 0


def test_deals_whose_contact_wrote_this_week_largest_first_as_far_as_the_user_may_see():
    org = f.org()
    big_contact = f.contact(org.rep, "big@client.example")
    small_contact = f.contact(org.rep, "small@client.example")
    quiet_contact = f.contact(org.rep, "quiet@client.example")
    big = f.deal(org.rep, "Big one", amount=50000, contact=big_contact)
    small = f.deal(org.rep, "Small one", amount=500, contact=small_contact)
    f.deal(org.rep, "Quiet one", amount=90000, contact=quiet_contact)
    thread = Thread.objects.create(subject="t")
    _mail(
        "big@client.example",
        org.rep.email,
        days_ago=1,
        thread=thread,
        on=[big_contact],
        in_mailboxes=[org.rep],
    )
    _mail(
        "big@client.example",
        org.rep.email,
        days_ago=2,
        thread=thread,
        on=[big_contact],
        in_mailboxes=[org.rep],
    )
    _mail(
        "small@client.example",
        org.rep.email,
        days_ago=3,
        thread=thread,
        on=[small_contact],
        in_mailboxes=[org.rep],
    )
    _mail(
        "quiet@client.example",
        org.rep.email,
        days_ago=20,
        thread=thread,
        on=[quiet_contact],
        in_mailboxes=[org.rep],
    )

    news = today.deals_with_news(org.rep, now=NOW)
    assert [(n.deal, n.count) for n in news] == [(big, 2), (small, 1)]

    # The peer may see the deals but the rep's mail only while the rep shares it.
    from crmail.sharing.models import SharingSetting

    SharingSetting.objects.filter(user=org.rep).update(mode="private")
    assert today.deals_with_news(org.peer, now=NOW) == []
    assert [n.deal for n in today.deals_with_news(org.rep, now=NOW)] == [big, small]


def test_the_home_page_asks_a_new_user_to_connect_a_mailbox_and_then_shows_the_day(client):
    org = f.org()
    client.force_login(org.rep)
    page = client.get(reverse("web:home")).content.decode()
    assert "Connect your mailbox" in page
    assert reverse("web:mailbox_connect") in page
    assert "Awaiting your reply" not in page

    customer = f.contact(org.rep, "ann@client.example", first_name="Ann", last_name="Lee")
    deal = f.deal(org.rep, "Renewal 2027", amount=1200, contact=customer)
    thread = Thread.objects.create(subject="Pricing")
    from django.utils import timezone

    msg = build.message(
        "ann@client.example", [org.rep.email], on=[customer], in_mailboxes=[org.rep]
    )
    Message.objects.filter(pk=msg.pk).update(
        date=timezone.now() - timedelta(days=3),
        from_address="ann@client.example",
        thread=thread,
        subject="Pricing question",
    )
    msg.links.update(date=timezone.now() - timedelta(days=3))
    page = client.get(reverse("web:home")).content.decode()
    assert "Connect your mailbox" not in page
    assert 'Awaiting your reply <span class="count">(1)</span>' in page
    assert "Pricing question" in page and "waiting 3 days" in page
    assert reverse("web:record_detail", args=["deals", deal.pk]) in page


def test_unread_customer_mail_leaves_out_read_mail_and_strangers():
    org = f.org()
    ann = f.contact(org.rep, "ann@client.example")
    f.deal(org.rep, "Big", amount=900, contact=ann)
    bob = f.contact(org.rep, "bob@client.example")
    t1, t2, t3, t4 = (Thread.objects.create(subject=s) for s in "abcd")
    deal_mail = _mail(
        "ann@client.example", org.rep.email, days_ago=1, thread=t1, on=[ann], in_mailboxes=[org.rep]
    )
    contact_mail = _mail(
        "bob@client.example", org.rep.email, days_ago=2, thread=t2, on=[bob], in_mailboxes=[org.rep]
    )
    read = _mail(
        "bob@client.example", org.rep.email, days_ago=3, thread=t3, on=[bob], in_mailboxes=[org.rep]
    )
    for location in read.locations.all():  # read in crmail: through the writer that
        location.seen = True  # keeps the inbox's conversations right
        location.save()
    _mail("news@shop.example", org.rep.email, days_ago=1, thread=t4, in_mailboxes=[org.rep])

    unread = today.unread_customer_mail(org.rep)
    assert unread.count == 2
    assert [(e.message.pk, e.stream) for e in unread.entries] == [
        (deal_mail.pk, "deals"),
        (contact_mail.pk, "contacts"),
    ]
    assert today.unread_customer_mail(org.peer).count == 0
