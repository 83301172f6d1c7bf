"""Labels by deal state on Gmail through the API (the local stand-in): real labels made,
put on and taken off with ``messages.modify``; the Inbox label leaves, a label of the
user's own stays; a deal's change, undo, and the labels' removal."""

from __future__ import annotations

from datetime import date

import pytest

from crmail.crm import actions as crm_actions
from crmail.crm.models import Stage
from crmail.mailboxes import actions
from crmail.mailboxes.labels import sorting, tasks
from crmail.mailboxes.labels.categories import this_month
from crmail.mailboxes.models import LabelMove, LiveMail, Location
from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests.test_gmail import gmail, gmail_mailbox, mail  # noqa: F401
from tests import factories as f

pytestmark = pytest.mark.django_db

CLOSING, OPEN, CUSTOMERS = "Deals Closing This Month", "Open Deals", "Customers"


@pytest.fixture
def rep(gmail, org, django_capture_on_commit_callbacks):  # noqa: F811
    """The rep's Gmail mailbox keeping a copy, synced, with labels on."""
    _, last = this_month()
    cleo = f.contact(org.rep, "cleo@acme.test")
    otto = f.contact(org.rep, "otto@acme.test")
    f.deal(org.rep, contact=cleo, closing_date=last)
    open_deal = f.deal(org.rep, contact=otto, closing_date=date(last.year + 1, 2, 1))
    acme = gmail.add_label("Acme")
    ids = {
        "cleo": gmail.add_message(mail(1, "cleo@acme.test")),
        "otto": gmail.add_message(mail(2, "otto@acme.test"), ("INBOX", "UNREAD", acme)),
        "other": gmail.add_message(mail(3, "news@elsewhere.test")),
    }
    mailbox = gmail_mailbox(owner=org.rep, keeps_copy=True, deal_labels=True)
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(mailbox)
    return gmail, mailbox, ids, acme, open_deal


def sort(mailbox) -> sorting.SortReport:
    with tasks.session(mailbox) as driver:
        return sorting.sort_mailbox(mailbox, driver)


def test_gmail_gets_three_labels_and_sorted_mail_keeps_its_own_labels(rep):
    server, mailbox, ids, acme, _ = rep
    report = sort(mailbox)
    assert report.created == [CLOSING, OPEN, CUSTOMERS]
    closing, opened = server.label_id(CLOSING), server.label_id(OPEN)
    assert closing and opened and server.label_id(CUSTOMERS)

    assert closing in server.labels_of(ids["cleo"]) and "INBOX" not in server.labels_of(ids["cleo"])
    # Mail the user had labelled "Acme" is still under Acme: only the Inbox label went.
    assert {opened, acme} <= server.labels_of(ids["otto"])
    assert "INBOX" not in server.labels_of(ids["otto"])
    assert "INBOX" in server.labels_of(ids["other"])
    inbox_copies = Location.objects.filter(mailbox=mailbox, folder__remote_id="INBOX")
    assert set(inbox_copies.values_list("remote_id", flat=True)) == {ids["other"]}
    assert sort(mailbox).moves == []


def test_a_gmail_message_changes_label_when_its_deal_changes_and_can_be_put_back(
    rep, org, django_capture_on_commit_callbacks
):
    server, mailbox, ids, acme, open_deal = rep
    sort(mailbox)
    first, _ = this_month()
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, open_deal, {"closing_date": first.isoformat()})
    labels = server.labels_of(ids["otto"])
    assert server.label_id(CLOSING) in labels and server.label_id(OPEN) not in labels
    assert acme in labels

    move = LabelMove.objects.filter(remote_id=ids["otto"]).first()
    assert move is not None and move.target == server.label_id(CLOSING)
    tasks.undo(org.rep, move)
    labels = server.labels_of(ids["otto"])
    assert server.label_id(OPEN) in labels and server.label_id(CLOSING) not in labels
    assert sort(mailbox).moves == []  # put back by its owner: left there

    won = Stage.objects.get(pipeline=open_deal.pipeline, name="Closed Won")
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, open_deal, {"stage": won.pk})
    assert server.label_id(OPEN) in server.labels_of(ids["otto"])  # still where it was put back


def test_removing_gmail_labels_puts_their_mail_back_in_the_inbox(
    rep, org, django_capture_on_commit_callbacks
):
    server, mailbox, ids, acme, _ = rep
    sort(mailbox)
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_mailbox(org.rep, mailbox, {"deal_labels": False}, remove_labels=True)
    assert server.label_id(CLOSING) is None and server.label_id(OPEN) is None
    assert all("INBOX" in server.labels_of(i) for i in ids.values())
    assert acme in server.labels_of(ids["otto"])


def test_a_mailbox_that_keeps_no_copy_is_sorted_from_mail_id_and_from_alone(
    gmail,  # noqa: F811
    org,
    django_capture_on_commit_callbacks,
):
    _, last = this_month()
    cleo = f.contact(org.rep, "cleo@acme.test")
    otto = f.contact(org.rep, "otto@acme.test")
    f.deal(org.rep, contact=cleo, closing_date=last)
    later = f.deal(org.rep, contact=otto, closing_date=date(last.year + 1, 2, 1))
    ids = {
        "cleo": gmail.add_message(mail(1, "cleo@acme.test")),
        "otto": gmail.add_message(mail(2, "otto@acme.test")),
        "other": gmail.add_message(mail(3, "news@elsewhere.test")),
    }
    mailbox = gmail_mailbox(owner=org.rep, keeps_copy=False, deal_labels=True)
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(mailbox)
    assert not Location.objects.filter(mailbox=mailbox).exists()  # nothing of the mail kept
    assert LiveMail.objects.filter(mailbox=mailbox).count() == 3

    sort(mailbox)
    closing, opened = gmail.label_id(CLOSING), gmail.label_id(OPEN)
    assert gmail.labels_of(ids["cleo"]) >= {closing} and "INBOX" not in gmail.labels_of(ids["cleo"])
    assert opened in gmail.labels_of(ids["otto"])
    assert "INBOX" in gmail.labels_of(ids["other"])
    assert sort(mailbox).moves == []  # what it moved is known under its label

    # The deal now closes this month: the mail changes label, from the sorter's log alone.
    first, _ = this_month()
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, later, {"closing_date": first.isoformat()})
    sort(mailbox)
    assert closing in gmail.labels_of(ids["otto"]) and opened not in gmail.labels_of(ids["otto"])

    move = LabelMove.objects.filter(remote_id=ids["otto"]).first()
    assert move is not None and move.target == closing
    tasks.undo(org.rep, move)
    assert opened in gmail.labels_of(ids["otto"])
    assert sort(mailbox).moves == []  # put back by its owner: left there
