"""Labels by deal state on Outlook through Microsoft Graph (the local stand-in): three
folders made with ``POST /me/mailFolders``, mail moved into them with ``/move`` (a moved
message gets a new id, as Outlook gives it), a deal's change, undo, and the folders'
removal; in a mailbox that keeps a copy and in one that keeps nothing of the mail."""

from __future__ import annotations

from datetime import date

import pytest

from crmail.crm import actions as crm_actions
from crmail.mailboxes import actions
from crmail.mailboxes.labels import sorting, tasks
from crmail.mailboxes.labels.categories import this_month
from crmail.mailboxes.models import LabelMove, LiveMail, Location
from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests.test_graph import graph, mail  # noqa: F401
from tests import factories as f

pytestmark = pytest.mark.django_db

CLOSING, OPEN, CUSTOMERS = "Deals Closing This Month", "Open Deals", "Customers"


def sort(mailbox) -> sorting.SortReport:
    with tasks.session(mailbox) as driver:
        return sorting.sort_mailbox(mailbox, driver)


def senders(graph, folder: str) -> set[str]:  # noqa: F811
    """The From addresses of the messages in ``folder`` on the service."""
    return {m.headers()["From"].addresses[0].addr_spec for m in graph.in_folder(folder).values()}


@pytest.mark.parametrize("keeps_copy", [True, False])
def test_outlook_gets_three_folders_and_mail_follows_its_deal(
    graph,  # noqa: F811
    org,
    settings,
    django_capture_on_commit_callbacks,
    keeps_copy,
):
    settings.CRMAIL_GRAPH_API_URL = graph.base_url
    _, last = this_month()
    cleo = f.contact(org.rep, "cleo@acme.test")
    otto = f.contact(org.rep, "otto@acme.test")
    f.deal(org.rep, contact=cleo, closing_date=last)
    later = f.deal(org.rep, contact=otto, closing_date=date(last.year + 1, 2, 1))
    for n, sender in enumerate(("cleo@acme.test", "otto@acme.test", "news@elsewhere.test")):
        graph.deliver(mail(n, sender=sender))
    mailbox = f.api_mailbox(
        "graph",
        graph.address,
        graph.add_token(),
        owner=org.rep,
        keeps_copy=keeps_copy,
        deal_labels=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(mailbox)
    assert Location.objects.filter(mailbox=mailbox).exists() == keeps_copy
    assert LiveMail.objects.filter(mailbox=mailbox).count() == (0 if keeps_copy else 3)

    report = sort(mailbox)
    assert report.created == [CLOSING, OPEN, CUSTOMERS]
    assert senders(graph, CLOSING) == {"cleo@acme.test"}
    assert senders(graph, OPEN) == {"otto@acme.test"}
    assert senders(graph, "inbox") == {"news@elsewhere.test"}
    assert sort(mailbox).moves == []  # what it moved is known in its new folder

    # The deal now closes this month: the mail moves on.
    first, _ = this_month()
    with django_capture_on_commit_callbacks(execute=True):
        crm_actions.update_record(org.rep, later, {"closing_date": first.isoformat()})
    sort(mailbox)
    assert senders(graph, CLOSING) == {"cleo@acme.test", "otto@acme.test"}
    assert senders(graph, OPEN) == set()

    # Its owner puts it back: it stays where they put it.
    move = LabelMove.objects.filter(mailbox=mailbox).order_by("-pk").first()
    assert move is not None
    tasks.undo(org.rep, move)
    assert senders(graph, OPEN) == {"otto@acme.test"}
    assert sort(mailbox).moves == []

    # Removing the labels puts their mail back in the Inbox and the folders go.
    with django_capture_on_commit_callbacks(execute=True):
        actions.update_mailbox(org.rep, mailbox, {"deal_labels": False}, remove_labels=True)
    assert senders(graph, "inbox") == {"cleo@acme.test", "otto@acme.test", "news@elsewhere.test"}
    deleted = graph.folder_id("deleteditems")  # where Outlook keeps a deleted folder
    assert {graph.folders[graph.folder_id(name)].parent for name in (CLOSING, OPEN, CUSTOMERS)} == {
        deleted
    }
    assert mailbox.folders.filter(name__in=(CLOSING, OPEN, CUSTOMERS)).count() == 0
