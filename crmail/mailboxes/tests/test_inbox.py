"""The sales inbox's read side: streams, deals first by value, threads, counts, privacy."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crmail.linking.models import Link
from crmail.mail.models import Message, Thread
from crmail.mailboxes import inbox, receivers
from crmail.mailboxes.models import Folder, Location, Mailbox
from crmail.people.models import User
from tests import factories as f

pytestmark = pytest.mark.django_db

_seq = itertools.count(1)
START = datetime(2026, 6, 1, tzinfo=UTC)


def connect(owner: User, *, active: bool = True) -> Mailbox:
    box = Mailbox.objects.create(owner=owner, email=owner.email, is_active=active)
    for remote_id, role in (("INBOX", "inbox"), ("Sent", "sent"), ("Archive", "archive")):
        Folder.objects.create(mailbox=box, remote_id=remote_id, name=remote_id, role=role)
    Folder.objects.create(mailbox=box, remote_id="Clients", name="Clients")
    return box


def folder(box: Mailbox, remote_id: str = "INBOX") -> Folder:
    return box.folders.get(remote_id=remote_id)


def put(
    box: Mailbox,
    *,
    thread: Thread | None = None,
    sender: str = "someone@example.com",
    on: tuple = (),
    seen: bool = True,
    flagged: bool = False,
    remote_folder: str = "INBOX",
    minutes: int | None = None,
) -> Message:
    """A parsed message in ``box`` (its Inbox unless told), in ``thread`` (else a new one)."""
    n = next(_seq)
    when = START + timedelta(minutes=minutes if minutes is not None else n)
    thread = thread or Thread.objects.create(subject=f"thread {n}")
    msg = Message.objects.create(
        sha256=f"{n:064x}",
        size=10,
        parse_state="parsed",
        date=when,
        subject=f"subject {n}",
        from_address=sender,
        snippet=f"snippet {n}",
        thread=thread,
    )
    for record in on:
        Link.objects.create(
            message=msg,
            module=type(record).MODULE,
            record_id=record.pk,
            reason="manual",
            date=when,
            created_at=when,
        )
    Location.objects.create(
        mailbox=box,
        folder=folder(box, remote_folder),
        message=msg,
        remote_id=str(n),
        uid=n,
        seen=seen,
        flagged=flagged,
    )
    return msg


def streams(user: User, **kw) -> dict[str, tuple[int, int]]:
    return {s.stream: (s.unread, s.total) for s in inbox.stream_counts(user, **kw)}


def test_each_conversation_lands_in_its_stream_and_tabs_count_them(org):
    rep = org.rep
    box = connect(rep)
    buyer = f.contact(rep, "buyer@example.com")
    f.deal(rep, "Big one", contact=buyer, amount=Decimal("5000"))
    friend = f.contact(rep, "friend@example.com")
    prospect = f.lead(rep, "prospect@example.com")
    hidden = f.contact(org.outsider_manager, "hidden@example.com", last_name="Secret")
    deal_mail = put(box, on=(buyer,), seen=False)
    contact_mail = put(box, on=(friend,))
    lead_mail = put(box, on=(prospect,), seen=False)
    hidden_mail = put(box, on=(hidden,))
    other_mail = put(box)

    everything = inbox.page(rep)
    by_message = {e.message.pk: e for e in everything.items}
    assert everything.count == 5
    assert by_message[deal_mail.pk].stream == "deals"
    assert by_message[contact_mail.pk].stream == "contacts"
    assert by_message[lead_mail.pk].stream == "leads"
    assert by_message[hidden_mail.pk].stream == "others"
    assert by_message[other_mail.pk].stream == "others"
    assert by_message[hidden_mail.pk].records == []
    assert [r.name for r in by_message[deal_mail.pk].records] == [
        "Big one",
        "Pat " + buyer.last_name,
    ]

    for stream, expected in (
        ("deals", [deal_mail]),
        ("contacts", [contact_mail]),
        ("leads", [lead_mail]),
        ("others", [other_mail, hidden_mail]),
    ):
        got = inbox.page(rep, stream=stream)
        assert [e.message.pk for e in got.items] == [m.pk for m in expected], stream
        assert got.count == len(expected)
    assert streams(rep) == {
        "deals": (1, 1),
        "contacts": (0, 1),
        "leads": (1, 1),
        "others": (0, 2),
    }


def test_a_closed_deal_or_one_the_user_may_not_view_does_not_make_a_deal_stream(org):
    rep = org.rep
    box = connect(rep)
    won = f.contact(rep, "won@example.com")
    f.deal(rep, contact=won, stage_name="Closed Won", amount=Decimal("9"))
    theirs = f.contact(rep, "theirs@example.com")
    f.deal(org.outsider_manager, "Their deal", contact=theirs, amount=Decimal("9"))
    put(box, on=(won,))
    put(box, on=(theirs,))
    assert {e.stream for e in inbox.page(rep).items} == {"contacts"}
    assert "Their deal" not in {r.name for e in inbox.page(rep).items for r in e.records}
    assert inbox.page(rep, stream="deals").count == 0


def test_deals_are_ordered_by_amount_then_closing_date_then_newest_mail(org):
    rep = org.rep
    box = connect(rep)
    soon = date(2026, 7, 1)
    later = date(2026, 9, 1)

    def buyer(amount: str | None, closing: date | None, *more: str) -> object:
        person = f.contact(rep)
        f.deal(rep, contact=person, amount=amount and Decimal(amount), closing_date=closing)
        for extra in more:
            f.deal(rep, contact=person, amount=Decimal(extra), closing_date=later)
        return person

    small = put(box, on=(buyer("100", soon),), minutes=500)
    big_later = put(box, on=(buyer("900", later),), minutes=1)
    big_soon = put(box, on=(buyer("900", soon),), minutes=2)
    # A contact with several open deals counts its largest.
    several = put(box, on=(buyer("50", soon, "2000"),), minutes=3)
    no_amount = put(box, on=(buyer(None, soon),), minutes=900)
    # A deal linked directly (no contact).
    direct = f.deal(rep, amount=Decimal("900"), closing_date=soon)
    direct_old = put(box, on=(direct,), minutes=0)
    tie_newer = put(box, on=(direct,), minutes=4, thread=None)

    got = inbox.page(rep, stream="deals")
    assert [e.message.pk for e in got.items] == [
        several.pk,
        tie_newer.pk,
        big_soon.pk,
        direct_old.pk,
        big_later.pk,
        small.pk,
        no_amount.pk,
    ]
    assert got.count == 7
    second = inbox.page(rep, stream="deals", limit=2, offset=2)
    assert [e.message.pk for e in second.items] == [big_soon.pk, direct_old.pk]


def test_a_thread_is_one_conversation_with_its_newest_message_and_its_state(org):
    rep = org.rep
    box = connect(rep)
    thread = Thread.objects.create(subject="Quote")
    first = put(box, thread=thread, seen=True, flagged=True, minutes=1)
    newest = put(box, thread=thread, seen=True, minutes=5)
    put(box, thread=thread, seen=False, minutes=3)
    reply = put(box, thread=thread, remote_folder="Sent", minutes=9)  # not in the Inbox
    alone = put(box, minutes=2)

    got = inbox.page(rep)
    assert got.count == 2
    top = got.items[0]
    assert top.message.pk == newest.pk
    assert (top.count, top.unread, top.flagged) == (3, True, True)
    assert got.items[1].message.pk == alone.pk
    assert (got.items[1].count, got.items[1].unread) == (1, False)
    assert first.pk not in {e.message.pk for e in got.items}

    sent = inbox.page(rep, folder=folder(box, "Sent"))
    assert [(e.message.pk, e.count) for e in sent.items] == [(reply.pk, 1)]
    assert [e.unread for e in inbox.page(rep, unread=True).items] == [True]
    assert inbox.page(rep, unread=True).count == 1
    assert inbox.page(rep, unread=False).count == 1
    assert streams(rep)["others"] == (1, 2)


def test_a_message_without_a_thread_is_a_conversation_of_its_own(org):
    rep = org.rep
    box = connect(rep)
    msg = put(box, seen=False)
    Message.objects.filter(pk=msg.pk).update(thread=None, parse_state="failed")
    receivers.copy_message_fields([msg.pk])
    put(box)
    got = inbox.page(rep)
    assert got.count == 2
    assert {e.message.pk: e.unread for e in got.items}[msg.pk] is True
    assert streams(rep)["others"] == (1, 2)


def test_another_users_mailbox_never_shows_nor_counts(org):
    rep, peer = org.rep, org.peer
    mine = connect(rep)
    theirs = connect(peer)
    put(mine)
    buyer = f.contact(rep, "b@example.com")
    f.deal(rep, contact=buyer, amount=Decimal("1"))
    put(theirs, on=(buyer,), seen=False)
    put(theirs, seen=False)
    assert inbox.page(rep).count == 1
    assert inbox.page(rep, stream="deals").count == 0
    assert sum(t for _, t in streams(rep).values()) == 1
    with pytest.raises(inbox.NoSuchFolder):
        inbox.page(rep, folder=folder(theirs))
    with pytest.raises(inbox.NoSuchFolder):
        inbox.stream_counts(rep, folder=folder(theirs))
    assert {c.folder.mailbox_id for c in inbox.folders(rep)} == {mine.pk}


def test_an_inactive_mailbox_is_left_out(org):
    rep = org.rep
    old = connect(rep, active=False)
    put(old)
    assert inbox.page(rep).count == 0
    assert inbox.folders(rep) == []


def test_folders_are_listed_by_role_then_name_with_unread_and_totals(org):
    rep = org.rep
    box = connect(rep)
    put(box, seen=False)
    put(box, seen=False)
    put(box, seen=True)
    put(box, remote_folder="Clients", seen=False)
    got = [(c.folder.name, c.unread, c.total) for c in inbox.folders(rep)]
    assert got == [("INBOX", 2, 3), ("Sent", 0, 0), ("Archive", 0, 0), ("Clients", 1, 1)]


def test_an_unknown_sender_is_marked_so(org):
    rep = org.rep
    box = connect(rep)
    f.contact(rep, "known@example.com")
    f.lead(org.outsider_manager, "theirs@example.com")
    known = put(box, sender="known@example.com")
    unknown = put(box, sender="new@example.com")
    hidden = put(box, sender="theirs@example.com")
    got = {e.message.pk: e.sender_known for e in inbox.page(rep).items}
    assert got == {known.pk: True, unknown.pk: False, hidden.pk: False}


def test_a_bad_stream_is_refused():
    with pytest.raises(ValueError, match="No such stream"):
        inbox.page(User(), stream="spam")


def test_a_new_location_takes_its_messages_thread_and_date(org):
    box = connect(org.rep)
    msg = put(box)
    loc = Location.objects.create(
        mailbox=box, folder=folder(box, "Archive"), message=msg, remote_id="x"
    )
    assert (loc.thread_id, loc.date) == (msg.thread_id, msg.date)


def test_mail_linked_to_an_account_alone_is_counted_with_the_others(org):
    rep = org.rep
    box = connect(rep)
    firm = f.account(rep, "Firm")
    friend = f.contact(rep, "friend@example.com")
    put(box, on=(firm,), seen=False)
    both = put(box, on=(firm, friend))
    assert streams(rep) == {
        "deals": (0, 0),
        "contacts": (0, 1),
        "leads": (0, 0),
        "others": (1, 1),
    }
    assert [e.message.pk for e in inbox.page(rep, stream="contacts").items] == [both.pk]
    assert inbox.page(rep, stream="others", tabs=True).count == 1
