"""One contact's mail from every viewpoint of SPEC F5, in real Chromium, on mail that a real
Dovecot holds and crmail synced (and one message crmail sent through a real SMTP server).

The organisation: CEO > Sales Manager > Sales Rep, and CEO > Support. Max manages the
sales reps Ann and Bob (peers). Olivia (Support) may open every contact (contacts are
public read) but nobody shares mail with her; Otto (Support, a profile without contacts)
may not open the contact at all. Jane Doe is Ann's contact; her second address is a guest
account on the company's own domain.

Sharing: Ann is public, to Bob only, her own domain excluded (so Max, above her, sees it
too); Bob is private; Max is public, to Bob only (so Ann, below him, does not see it).

================== ========================================= ===== ===== ===== ======
message            where it lies                              Max   Ann   Bob   Olivia
================== ========================================= ===== ===== ===== ======
Pricing question   Ann's Inbox (Jane wrote)                   yes   yes   yes   no
Guest portal note  Ann's Inbox, internal (guest.crmail.test)  no    yes   no    no
Meeting on Tuesday Ann's and Bob's Inboxes (one message)      yes   yes   yes   no
Golf on Friday     Bob's Inbox (private)                      no    no    yes   no
Contract terms     Max's Inbox (shared with Bob only)         yes   no    yes   no
Order confirmed    sent by Ann from crmail, from Jane's page  yes   yes   yes   yes
================== ========================================= ===== ===== ===== ======

Otto sees none of them: the contact and every message answer 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from crmail.crm.models import Contact
from crmail.mail.compose import Draft
from crmail.mail.models import Message
from crmail.mailboxes.models import Mailbox
from crmail.mailboxes.sending import send_message
from crmail.mailboxes.tasks import run_sync
from crmail.people.models import ModuleDefault, Profile, Role, User, full_permissions
from crmail.sharing import actions as sharing
from tests import factories as f

pytestmark = pytest.mark.browser

JANE = "jane@customer.example"
JANE_GUEST = "jane@guest.crmail.test"  # at a subdomain of the company's own domain
ANN, BOB, MAX = "ann@crmail.test", "bob@crmail.test", "max@crmail.test"

SEEN_BY = {
    "max": {"Pricing question", "Meeting on Tuesday", "Contract terms", "Order confirmed"},
    "ann": {"Pricing question", "Guest portal note", "Meeting on Tuesday", "Order confirmed"},
    "bob": {
        "Pricing question",
        "Meeting on Tuesday",
        "Golf on Friday",
        "Contract terms",
        "Order confirmed",
    },
    "olivia": {"Order confirmed"},
    "otto": set(),
}
ALL_SUBJECTS = set().union(*SEEN_BY.values())


def mail(n: int, subject: str, sender: str, to: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <viewpoints-{n}@customer.example>\r\n"
        f"Date: Mon, 02 Nov 2026 10:{n:02d}:00 +0000\r\n\r\n{subject}: the text.\r\n"
    ).encode()


@dataclass
class Scene:
    max: User
    ann: User
    bob: User
    olivia: User
    otto: User
    jane: Contact

    def message(self, subject: str) -> Message:
        return Message.objects.get(subject=subject)


def build(dovecot, smtp_sink) -> Scene:  # type: ignore[no-untyped-def]
    ceo = Role.objects.get(name="CEO")
    sales_manager = Role.objects.create(name="Sales Manager", parent=ceo)
    Role.objects.create(name="Sales Rep", parent=sales_manager)
    Role.objects.create(name="Support", parent=ceo)
    no_contacts = Profile.objects.create(
        name="No contacts", permissions={**full_permissions(), "contacts": []}
    )
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})

    max_ = f.user(MAX, name="Max Manager", role_name="Sales Manager")
    ann = f.user(ANN, name="Ann Rep", role_name="Sales Rep", manager=max_)
    bob = f.user(BOB, name="Bob Rep", role_name="Sales Rep", manager=max_)
    olivia = f.user("olivia@crmail.test", name="Olivia Support", role_name="Support")
    otto = f.user("otto@crmail.test", name="Otto Other", role_name="Support")
    User.objects.filter(pk=otto.pk).update(profile=no_contacts)
    jane = f.contact(ann, JANE, first_name="Jane", last_name="Doe", secondary=(JANE_GUEST,))

    sharing.set_sharing(
        None, ann, mode="public", share_with=[bob], excluded_domains=["crmail.test"]
    )
    sharing.set_sharing(None, bob, mode="private")
    sharing.set_sharing(
        None, max_, mode="public", share_with=[bob], excluded_domains=["crmail.test"]
    )

    logins = {who: dovecot.new_user(who) for who in ("ann", "bob", "max")}
    dovecot.create_mailbox(logins["ann"][0], "Sent")
    boxes = {
        "ann": f.mailbox(
            dovecot,
            *logins["ann"],
            owner=ann,
            email=ANN,
            smtp_host="127.0.0.1",
            smtp_port=smtp_sink.port,
            smtp_security="none",
            smtp_same_credentials=False,  # the sink takes mail without a login
        ),
        "bob": f.mailbox(dovecot, *logins["bob"], owner=bob, email=BOB),
        "max": f.mailbox(dovecot, *logins["max"], owner=max_, email=MAX),
    }
    customer = f"Jane Doe <{JANE}>"
    ann_login, bob_login, max_login = (logins[w][0] for w in ("ann", "bob", "max"))
    dovecot.deliver(ann_login, mail(1, "Pricing question", customer, ANN))
    dovecot.deliver(ann_login, mail(2, "Guest portal note", JANE_GUEST, ANN))
    both = mail(3, "Meeting on Tuesday", customer, f"{ANN}, {BOB}")
    dovecot.deliver(ann_login, both)
    dovecot.deliver(bob_login, both)
    dovecot.deliver(bob_login, mail(4, "Golf on Friday", customer, BOB))
    dovecot.deliver(max_login, mail(5, "Contract terms", customer, MAX))
    # From Jane's page, as the compose view sends it.
    send_message(
        ann,
        Draft(
            sender=ANN,
            sender_name="Ann Rep",
            to=[JANE],
            subject="Order confirmed",
            text="Order confirmed: the text.",
        ),
        record_module="contacts",
        record_id=jane.pk,
    )
    assert smtp_sink.wait_for(1, 5)
    for box in boxes.values():
        run_sync(Mailbox.objects.get(pk=box.pk))
    assert set(Message.objects.values_list("subject", flat=True)) == ALL_SUBJECTS
    meeting = Message.objects.get(subject="Meeting on Tuesday")
    assert sorted(meeting.locations.values_list("mailbox__owner__email", flat=True)) == [ANN, BOB]
    return Scene(max_, ann, bob, olivia, otto, jane)


@pytest.fixture
def scene(app, dovecot, smtp_sink) -> Scene:  # type: ignore[no-untyped-def]
    return build(dovecot, smtp_sink)


def message_urls(scene: Scene, subjects: set[str]) -> dict[str, str]:
    return {subject: f"/messages/{scene.message(subject).pk}/" for subject in sorted(subjects)}


def sign_in_as(app, user: User) -> None:  # type: ignore[no-untyped-def]
    app.page.context.clear_cookies()
    app.sign_in(user.email, f.PASSWORD)


def emails_region(app):  # type: ignore[no-untyped-def]
    return app.page.get_by_role("region", name=re.compile("^Emails"))


def listed_subjects(app, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    rows = emails_region(app).locator(".email-list > .email-row")
    expect(rows).to_have_count(count)
    return [text.strip() for text in rows.locator("a.email-subject").all_text_contents()]


def by_user_choices(app) -> list[str]:  # type: ignore[no-untyped-def]
    options = emails_region(app).get_by_label("By user").locator("option")
    return [text.strip() for text in options.all_text_contents()][1:]  # less "Choose…"


def expect_not_found(app, paths: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Each path (keyed by what it must not show) answers 404 to the signed-in viewer: the
    first opened in the page (the "Not found" page shows), the rest asked with its cookies."""
    for n, (secret, path) in enumerate(paths.items()):
        if n == 0:
            response = app.go(path)
            expect(app.page.get_by_role("heading", name="Not found")).to_be_visible()
            expect(app.page.locator("body")).not_to_contain_text(secret)
        else:
            response = app.page.request.get(app.url + path)
            assert secret not in response.text(), path
        assert response.status == 404, path


# Each viewpoint opens one message it may see, by clicking it in the list.
OPENS = {
    "max": "Meeting on Tuesday",  # through Ann's copy (Bob's copy is private)
    "ann": "Guest portal note",  # her own internal mail
    "bob": "Contract terms",  # Max chose him
    "olivia": "Order confirmed",  # sent from crmail: everyone who can open Jane
}


# The "By user" choices: whose mail the viewer sees here. Max and Ann see "Meeting on
# Tuesday" through Ann's copy: Bob's private copy of it must not make Bob a choice.
BY_USER = {
    "max": ["Ann Rep", "Max Manager"],
    "ann": ["Ann Rep"],
    "bob": ["Ann Rep", "Bob Rep", "Max Manager"],
    "olivia": ["Ann Rep"],  # her mail sent from crmail only
}


def check_viewpoint(app, scene: Scene, who: str) -> None:  # type: ignore[no-untyped-def]
    """``who`` sees exactly SEEN_BY[who] on Jane's page, opens one, and 404s on the rest."""
    expected = SEEN_BY[who]
    page = app.page
    sign_in_as(app, getattr(scene, who))
    app.go(f"/contacts/{scene.jane.pk}/")
    expect(page.get_by_role("heading", name="Jane Doe", exact=True)).to_be_visible()
    n = len(expected)
    heading = f"Emails ({n} conversation{'s' if n != 1 else ''})"
    expect(emails_region(app).get_by_role("heading", name=heading)).to_be_visible()
    subjects = listed_subjects(app, n)
    assert sorted(subjects) == sorted(expected), who  # each once: no copy listed twice
    assert by_user_choices(app) == BY_USER[who], who
    page.mouse.move(0, 0)
    app.shot(f"viewpoint-{who}")

    opened = OPENS[who]
    emails_region(app).get_by_role("link", name=opened).click()
    expect(page.get_by_role("heading", name=opened)).to_be_visible()
    body = page.frame_locator("iframe.message-frame")
    expect(body.locator("body")).to_contain_text(f"{opened}: the text.")
    assert page.js_errors == [], who

    expect_not_found(app, message_urls(scene, ALL_SUBJECTS - expected))
    page.js_errors.clear()  # the browser logs each 404 as a failed load


def test_manager_subordinate_peer_and_outsider_each_see_what_f5_allows(app, scene):
    for who in ("max", "ann", "bob", "olivia"):
        check_viewpoint(app, scene, who)
    # Otto may not open Jane: neither her page nor any of her mail, sent from crmail or not.
    sign_in_as(app, scene.otto)
    expect_not_found(app, {"Jane": f"/contacts/{scene.jane.pk}/"})
    expect_not_found(app, message_urls(scene, ALL_SUBJECTS))


def test_by_user_lists_only_the_copies_the_viewer_may_see(app, scene):
    # Bob chooses Max in the browser: the mail Max shares with him.
    sign_in_as(app, scene.bob)
    app.go(f"/contacts/{scene.jane.pk}/")
    page = app.page
    app.settled()
    emails_region(app).get_by_label("By user").select_option(label="Max Manager")
    expect(page).to_have_url(re.compile(rf"view=user&user={scene.max.pk}"))
    assert listed_subjects(app, 1) == ["Contract terms"]
    page.mouse.move(0, 0)
    app.shot("viewpoint-bob-by-max")
    assert page.js_errors == []
    # Max and Ann asking for Bob's mail by address: his copy of "Meeting on Tuesday" is
    # private, so nothing is listed under him (they see the message through Ann's copy).
    for viewer in (scene.max, scene.ann):
        sign_in_as(app, viewer)
        app.go(f"/contacts/{scene.jane.pk}/?view=user&user={scene.bob.pk}")
        emails = emails_region(app)
        expect(emails.locator(".email-list > .email-row")).to_have_count(0)
        expect(emails).to_contain_text("No email you may see in this view.")
