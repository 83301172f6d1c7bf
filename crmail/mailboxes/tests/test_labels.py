"""Labels by deal state (SPEC F8) on a real Dovecot: the three folders made, Inbox mail from
contacts sorted by their deals, the month's boundary in the organisation's time zone, a
deal's change moving mail, undo, and switching the labels off with their removal. doveadm
is the oracle of where each message is."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from email.utils import format_datetime

import pytest
from django.utils import timezone

from crmail.crm import actions as crm_actions
from crmail.crm.models import Stage
from crmail.mailboxes import actions
from crmail.mailboxes.labels import sorting, tasks
from crmail.mailboxes.labels.categories import this_month
from crmail.mailboxes.models import LabelMove, Location, MoveReason
from crmail.mailboxes.tasks import run_sync
from crmail.people.actions import Invalid, NotAllowed
from tests import factories as f

pytestmark = pytest.mark.django_db
_n = itertools.count(1)

CLOSING, OPEN, CUSTOMERS = "Deals Closing This Month", "Open Deals", "Customers"


def mail(sender: str, subject: str) -> bytes:
    n = next(_n)
    return "\r\n".join(
        [
            f"From: {sender}",
            "To: rep@crmail.test",
            f"Subject: {subject}",
            f"Message-ID: <{subject.replace(' ', '-')}.{n}@customer.test>",
            f"Date: {format_datetime(timezone.now())}",
            "",
            f"About our order ({n}).",
            "",
        ]
    ).encode()


def where(server, login) -> dict[str, str]:
    """{subject-ish Message-ID prefix: folder} for every message of the account."""
    found = {}
    for folder in server.list_mailboxes(login):
        for m in server.messages(login, folder):
            found[str(m["message_id"]).strip("<>").split(".")[0]] = folder
    return found


@pytest.fixture
def sync(django_capture_on_commit_callbacks):
    def run(mailbox) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            run_sync(mailbox)

    return run


@pytest.fixture
def rep(dovecot, dovecot_user, org, sync):
    """The rep's mailbox, with mail from five senders synced and labels switched on."""
    login, password = dovecot_user
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep, deal_labels=True)
    _, last = this_month()
    people = {
        "closing": f.contact(org.rep, "cleo@acme.test", first_name="Cleo", last_name="Closer"),
        "open": f.contact(org.rep, "otto@acme.test", first_name="Otto", last_name="Open"),
        "won": f.contact(org.rep, "wyn@acme.test", first_name="Wyn", last_name="Won"),
        "lost": f.contact(org.rep, "lou@acme.test", first_name="Lou", last_name="Lost"),
    }
    deals = {
        "closing": f.deal(org.rep, contact=people["closing"], closing_date=last),
        "open": f.deal(org.rep, contact=people["open"], closing_date=date(last.year + 1, 1, 5)),
        "won": f.deal(org.rep, stage_name="Closed Won", contact=people["won"]),
        "lost": f.deal(org.rep, stage_name="Closed Lost", contact=people["lost"]),
    }
    for key, sender in [
        ("closing", "Cleo Closer <Cleo@Acme.test>"),
        ("open", "otto@acme.test"),
        ("won", "wyn@acme.test"),
        ("lost", "lou@acme.test"),
        ("stranger", "someone@elsewhere.test"),
    ]:
        dovecot.deliver(login, mail(sender, key))
    sync(mailbox)
    return dovecot, login, mailbox, deals


def sort(mailbox, now: datetime | None = None) -> sorting.SortReport:
    with tasks.session(mailbox) as driver:
        return sorting.sort_mailbox(mailbox, driver, now)


def test_the_three_folders_are_made_and_inbox_mail_sorted_by_deal_state(rep):
    server, login, mailbox, _ = rep
    report = sort(mailbox)

    assert report.created == [CLOSING, OPEN, CUSTOMERS]
    assert {CLOSING, OPEN, CUSTOMERS} <= set(server.list_mailboxes(login))
    assert where(server, login) == {
        "closing": CLOSING,
        "open": OPEN,
        "won": CUSTOMERS,
        "lost": "INBOX",
        "stranger": "INBOX",
    }
    # Every move is logged, and crmail's copies follow them.
    assert {(m.source, m.target, m.from_address) for m in LabelMove.objects.all()} == {
        ("INBOX", CLOSING, "cleo@acme.test"),
        ("INBOX", CUSTOMERS, "wyn@acme.test"),
        ("INBOX", OPEN, "otto@acme.test"),
    }
    copies = {
        loc.message.subject: loc.folder.remote_id
        for loc in Location.objects.filter(mailbox=mailbox).select_related("message", "folder")
    }
    assert copies == {
        "closing": CLOSING,
        "open": OPEN,
        "won": CUSTOMERS,
        "lost": "INBOX",
        "stranger": "INBOX",
    }
    for loc in Location.objects.filter(mailbox=mailbox).select_related("folder"):
        assert loc.uid in server.uids(login, loc.folder.remote_id)
    # A second sort has nothing to do; the folders are not made twice.
    again = sort(mailbox)
    assert again.moves == [] and again.created == []


def test_a_full_inbox_is_sorted_a_few_commands_at_a_time(rep, monkeypatch):
    # Many messages from one customer go under the label in one UID MOVE per batch, not
    # one a message; each is still logged with its new UID, and crmail's copies follow.
    from crmail.mailboxes.drivers.imap import ImapDriver

    server, login, mailbox, _ = rep
    for n in range(12):
        server.deliver(login, mail("cleo@acme.test", f"more {n}"))
    with tasks.session(mailbox) as driver:
        from crmail.mailboxes.sync import sync_mailbox

        sync_mailbox(mailbox, driver)
    commands: list[int] = []
    real = ImapDriver.move_many

    def counted(self, folder, ids, dest):  # type: ignore[no-untyped-def]
        commands.append(len(ids))
        return real(self, folder, ids, dest)

    monkeypatch.setattr(ImapDriver, "move_many", counted)
    monkeypatch.setattr(ImapDriver, "move", lambda *a: pytest.fail("moved one by one"))
    monkeypatch.setattr(sorting, "MOVE_BATCH", 5)
    sort(mailbox)
    assert commands == [5, 5, 3, 1, 1]  # Cleo's 13 by fives; Otto's and Wyn's one each
    moves = LabelMove.objects.filter(target=CLOSING)
    assert moves.count() == 13 and all(m.new_remote_id for m in moves)
    assert len(server.messages(login, CLOSING)) == 13
    for loc in Location.objects.filter(mailbox=mailbox).select_related("folder"):
        assert loc.uid in server.uids(login, loc.folder.remote_id)


def test_the_month_is_the_organisations_calendar_month(rep, settings):
    server, login, mailbox, deals = rep
    # 12:00 UTC on 30 November is already 1 December in Auckland (UTC+13).
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    deals["closing"].closing_date = date(2026, 12, 1)
    deals["closing"].save()
    deals["open"].closing_date = date(2026, 11, 30)
    deals["open"].save()

    settings.TIME_ZONE = "Pacific/Auckland"
    sort(mailbox, now)
    assert where(server, login)["closing"] == CLOSING
    assert where(server, login)["open"] == OPEN

    settings.TIME_ZONE = "UTC"  # still November: the two change places
    sort(mailbox, now)
    assert where(server, login)["closing"] == OPEN
    assert where(server, login)["open"] == CLOSING
    assert LabelMove.objects.filter(reason=MoveReason.RECATEGORISED).count() == 2


def test_a_deals_new_closing_date_or_stage_moves_its_contacts_mail_soon(
    rep, org, django_capture_on_commit_callbacks
):
    server, login, mailbox, deals = rep
    sort(mailbox)
    assert where(server, login)["open"] == OPEN

    first, _ = this_month()
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, deals["open"], {"closing_date": first.isoformat()})
    assert where(server, login)["open"] == CLOSING

    won = Stage.objects.get(pipeline=deals["open"].pipeline, name="Closed Won")
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, deals["open"], {"stage": won.pk})
    assert where(server, login)["open"] == CUSTOMERS

    lost = Stage.objects.get(pipeline=deals["open"].pipeline, name="Closed Lost")
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, deals["open"], {"stage": lost.pk})
    assert where(server, login)["open"] == "INBOX"  # no deal left: back where it came from


def test_a_move_undone_goes_back_and_stays_there(rep, org):
    server, login, mailbox, _ = rep
    sort(mailbox)
    move = LabelMove.objects.get(from_address="otto@acme.test")
    with pytest.raises(NotAllowed):
        tasks.undo(org.peer, move)

    tasks.undo(org.rep, move)
    assert where(server, login)["open"] == "INBOX"
    move.refresh_from_db()
    assert move.undone_at is not None and move.undone_by == org.rep
    copy = Location.objects.get(mailbox=mailbox, message__subject="open")
    assert copy.folder.remote_id == "INBOX" and str(copy.uid) == move.restored_remote_id

    with pytest.raises(sorting.CannotUndo, match="undone already"):
        tasks.undo(org.rep, move)
    assert sort(mailbox).moves == []  # its owner put it back: the sorter leaves it
    assert where(server, login)["open"] == "INBOX"


def test_switching_labels_off_can_remove_them_and_puts_their_mail_back(
    rep, org, django_capture_on_commit_callbacks
):
    server, login, mailbox, _ = rep
    sort(mailbox)
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_mailbox(org.rep, mailbox, {"deal_labels": False}, remove_labels=True)

    assert not {CLOSING, OPEN, CUSTOMERS} & set(server.list_mailboxes(login))
    assert set(where(server, login).values()) == {"INBOX"}
    assert len(server.uids(login)) == 5
    removed = LabelMove.objects.filter(reason=MoveReason.LABELS_REMOVED)
    assert sorted(m.source for m in removed) == sorted([CLOSING, CUSTOMERS, OPEN])
    assert set(
        Location.objects.filter(mailbox=mailbox).values_list("folder__remote_id", flat=True)
    ) == {"INBOX"}


def test_switching_labels_off_and_keeping_them_leaves_the_mail_where_it_is(
    rep, org, django_capture_on_commit_callbacks
):
    server, login, mailbox, _ = rep
    sort(mailbox)
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_mailbox(org.rep, mailbox, {"deal_labels": False})
    assert where(server, login)["closing"] == CLOSING
    assert tasks.sort_task.call_local(mailbox.pk) is None  # off: nothing sorted


def test_labels_need_customer_alerts_and_a_server_with_folders(dovecot, dovecot_user, org):
    login, password = dovecot_user
    mailbox = f.mailbox(dovecot, login, password, owner=org.rep)
    with pytest.raises(Invalid) as caught:
        actions.update_mailbox(org.rep, mailbox, {"customer_alerts": False, "deal_labels": True})
    assert caught.value.errors[0]["field"] == "deal_labels"
    assert "customer mail alerts" in caught.value.errors[0]["message"]

    pop = f.mailbox(dovecot, login, password, owner=org.peer, protocol="pop3")
    with pytest.raises(Invalid) as caught:
        actions.update_mailbox(org.peer, pop, {"deal_labels": True})
    assert "POP3 mailboxes have no folders" in caught.value.errors[0]["message"]

    with pytest.raises(Invalid) as caught:
        actions.update_mailbox(org.rep, mailbox, {"deal_labels": True}, remove_labels=True)
    assert caught.value.errors[0]["field"] == "remove_labels"
