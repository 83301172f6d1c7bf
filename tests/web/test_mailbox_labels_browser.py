"""Labels by deal state in a real browser: the mailbox page's two switches, the move log,
undoing a move and removing the labels, against a real Dovecot (doveadm as the oracle)."""

from __future__ import annotations

from email.utils import format_datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crmail.mailboxes.labels.categories import this_month
from crmail.mailboxes.tasks import run_sync
from tests import factories as f

pytestmark = pytest.mark.browser

CLOSING = "Deals Closing This Month"


def mail(sender: str, subject: str, n: int) -> bytes:
    return (
        f"From: {sender}\r\nTo: rep@crmail.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <labels{n}@acme.test>\r\nDate: {format_datetime(timezone.now())}\r\n"
        f"\r\nHello {n}\r\n"
    ).encode()


def test_switch_labels_on_see_the_moves_undo_one_then_remove_the_labels(app, dovecot):
    login, password = dovecot.new_user()
    rep = f.user("rep@crmail.test", name="Rex Rep")
    mailbox = f.mailbox(dovecot, login, password, owner=rep)
    _, last = this_month()
    f.deal(rep, contact=f.contact(rep, "cleo@acme.test", first_name="Cleo"), closing_date=last)
    f.deal(rep, stage_name="Closed Won", contact=f.contact(rep, "wyn@acme.test"))
    dovecot.deliver(login, mail("Cleo <cleo@acme.test>", "Contract for December", 1))
    dovecot.deliver(login, mail("wyn@acme.test", "Thanks for the delivery", 2))
    dovecot.deliver(login, mail("news@elsewhere.test", "Our newsletter", 3))
    run_sync(mailbox)

    page = app.page
    app.sign_in("rep@crmail.test", f.PASSWORD)
    app.go(f"/settings/mail/{mailbox.pk}/")
    card = page.locator("#labels")
    expect(card).to_contain_text("No mail was moved by the labels yet")
    alerts = card.get_by_label("Tell me at once when a lead or contact writes")
    labels = card.get_by_label("Sort mail from contacts under labels by deal state")
    expect(alerts).to_be_checked()
    expect(labels).not_to_be_checked()

    # Labels need customer alerts.
    alerts.uncheck()
    labels.check()
    card.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("need customer mail alerts")
    assert dovecot.list_mailboxes(login) == ["INBOX"]

    page.locator("#labels").get_by_label("Sort mail from contacts under labels").check()
    page.locator("#labels").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Labels are on")
    rows = page.locator("#labels table.label-moves tbody tr")
    expect(rows).to_have_count(2)
    cleo = rows.filter(has_text="cleo@acme.test")
    expect(cleo).to_contain_text("Contract for December")
    expect(cleo).to_contain_text(f"Inbox → {CLOSING}")
    expect(rows.filter(has_text="wyn@acme.test")).to_contain_text("Inbox → Customers")
    assert len(dovecot.messages(login, CLOSING)) == 1
    assert len(dovecot.messages(login, "INBOX")) == 1  # the newsletter stays
    app.shot("mailbox-labels-on")

    cleo.get_by_role("button", name="Move the message from cleo@acme.test back to Inbox").click()
    expect(page.get_by_role("status").first).to_contain_text("back in Inbox")
    expect(
        page.locator("#labels table.label-moves tbody tr").filter(has_text="cleo@acme.test")
    ).to_contain_text("moved back")
    assert dovecot.messages(login, CLOSING) == []
    assert len(dovecot.messages(login, "INBOX")) == 2

    # Switching off asks what becomes of the labels.
    page.locator("#labels").get_by_label("Sort mail from contacts under labels").uncheck()
    page.locator("#labels").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("keep the three labels")
    expect(
        page.locator("#labels").get_by_label("Sort mail from contacts under labels")
    ).to_be_checked()
    page.locator("#labels").get_by_label("Sort mail from contacts under labels").uncheck()
    page.locator("#labels").get_by_label("Remove them from the server").check()
    app.shot("mailbox-labels-switching-off")
    page.locator("#labels").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("being removed")
    expect(
        page.locator("#labels").get_by_label("Sort mail from contacts under labels")
    ).not_to_be_checked()
    expect(page.locator("#labels table.label-moves tbody tr").first).to_contain_text(
        "labels removed"
    )
    assert dovecot.list_mailboxes(login) == ["INBOX"]
    assert len(dovecot.messages(login, "INBOX")) == 3
    app.shot("mailbox-labels-removed")
