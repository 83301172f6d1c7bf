"""A Gmail API mailbox that keeps no copy (privacy mode), against the local Gmail stand-in:
a record's Emails list asks it live and merges its mail with the stored mail; sharing
decides whose live mail a viewer sees; a live message opens through the safe display;
the sync keeps only Mail ID, From and received time; deactivation takes the mail away."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crmail.api.tests.conftest import ApiClient
from crmail.mailboxes import actions as mailbox_actions
from crmail.mailboxes.live import clear_cache
from crmail.mailboxes.models import LiveMail, Mailbox
from crmail.mailboxes.tasks import run_sync
from crmail.mailboxes.tests.standins.gmail import GmailStandIn
from crmail.notifications.models import Notification
from crmail.people.models import ModuleDefault, User
from crmail.sharing import live
from crmail.sharing.models import ExcludedDomain, MessageOpen, SharingSetting
from crmail.sharing.tests import build
from tests import factories as f
from tests.database import every_value

pytestmark = pytest.mark.django_db

ME = "rep@gmail.test"
JANE = "jane@acme.io"


def mail(
    sender: str, to: str, subject: str, *, body: str = "", html: str = "", cc: str = ""
) -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "")
    head += f"Subject: {subject}\r\nMessage-ID: <{abs(hash(subject))}@example.com>\r\n"
    if html:
        return (
            head + "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        ).encode() + html.encode()
    return (head + f"\r\n{body or 'Hello'}\r\n").encode()


def at(day: int, hour: int = 12) -> float:
    return datetime(2026, 6, day, hour, tzinfo=UTC).timestamp()


@pytest.fixture
def gmail(settings: Any) -> Any:
    clear_cache()
    with GmailStandIn(ME) as stand_in:
        stand_in.token("access-1")
        settings.CRMAIL_GMAIL_API_URL = stand_in.url
        yield stand_in
    clear_cache()


def live_mailbox(owner: User, **fields: Any) -> Mailbox:
    return f.api_mailbox("gmail", ME, "access-1", owner=owner, **{"keeps_copy": False, **fields})


@pytest.fixture
def scene(gmail: GmailStandIn) -> Any:
    """Rex keeps no copy of his Gmail; Pia's IMAP mailbox holds a stored message; both
    on the contact Jane."""
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    rep = f.user("rex@crmail.test", name="Rex Rep")
    peer = f.user("pia@crmail.test", name="Pia Peer")
    jane = f.contact(rep, JANE, last_name="Quinn")
    box = live_mailbox(rep)
    ids = {
        "newest": gmail.add_message(
            mail(f"Jane Quinn <{JANE}>", ME, "Quote for July"), internal_date=at(20)
        ),
        "middle": gmail.add_message(mail(ME, JANE, "Our offer"), ["SENT"], at(10)),
        "oldest": gmail.add_message(
            mail(f"Jane <{JANE}>", ME, "First contact"), internal_date=at(1)
        ),
        "other": gmail.add_message(mail("bob@else.io", ME, "Not Jane's"), internal_date=at(15)),
    }
    stored = build.message(JANE, [peer.email], on=[jane], in_mailboxes=[peer])
    type(stored).objects.filter(pk=stored.pk).update(date=datetime(2026, 6, 5, tzinfo=UTC))
    return type(
        "Scene",
        (),
        {
            "rep": rep,
            "peer": peer,
            "jane": jane,
            "box": box,
            "ids": ids,
            "stored": stored,
            "gmail": gmail,
        },
    )


def page(viewer: User, s: Any, *, cursor: str | None = None, limit: int = 20) -> live.MixedPage:
    from crmail.sharing import emails

    stored = emails.record_emails(viewer, "contacts", s.jane.pk)
    boxes = live.mailboxes_for(viewer, "contacts", s.jane.pk, "all", None, None)
    return live.merged_page(
        viewer, "contacts", s.jane.pk, stored, boxes, cursor=cursor, limit=limit
    )


def names(items: list[Any]) -> list[str]:
    return [i.message.subject if isinstance(i, live.LiveItem) else "stored" for i in items]


# --- the list -------------------------------------------------------------------------------


def test_the_records_list_merges_live_mail_with_stored_mail_newest_first(scene):
    result = page(scene.rep, scene)
    assert names(result.items) == ["Quote for July", "Our offer", "stored", "First contact"]
    assert result.next_cursor is None and result.notices == []
    # One query for the record's addresses, then the page's headers in a batch.
    listed = scene.gmail.calls("GET /gmail/v1/users/me/messages")
    assert next(r for r in listed if r.path.endswith("/messages")).query["q"] == [
        f"from:{JANE} OR to:{JANE} OR cc:{JANE}"
    ]


def test_a_message_held_in_several_places_shows_once(scene, settings):
    # Rex's Gmail and Olga's Outlook both hold Jane's quote (one Message-ID): it shows once.
    # Once a stored copy is on the record too, that one shows instead.
    from crmail.mailboxes.tests.standins.graph import serve

    quote = mail(f"Jane Quinn <{JANE}>", ME, "Quote for July")
    with serve() as graph:
        settings.CRMAIL_GRAPH_API_URL = graph.base_url
        olga = f.user("olga@crmail.test", name="Olga Other")
        f.api_mailbox("graph", graph.address, graph.add_token(), owner=olga, keeps_copy=False)
        graph.deliver(quote, received=datetime(2026, 6, 20, 12, tzinfo=UTC))
        result = page(scene.rep, scene)
        assert names(result.items) == ["Quote for July", "Our offer", "stored", "First contact"]
        message_id = quote.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        type(scene.stored).objects.filter(pk=scene.stored.pk).update(message_id=message_id)
        result = page(scene.rep, scene)
        assert names(result.items) == ["Our offer", "stored", "First contact"]
        assert result.next_cursor is None


def test_pages_follow_the_cursor_without_losing_or_repeating_mail(scene):
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        result = page(scene.rep, scene, cursor=cursor, limit=1)
        seen += names(result.items)
        cursor = result.next_cursor
        if cursor is None:
            break
    assert seen == ["Quote for July", "Our offer", "stored", "First contact"]


def test_a_cursor_crmail_did_not_make_is_refused_in_words(scene):
    with pytest.raises(live.BadCursor, match="first page"):
        page(scene.rep, scene, cursor="made-up")


def test_a_provider_error_shows_in_words_and_the_stored_mail_still_shows(scene):
    scene.gmail.fail(500, "backendError", retry_after=None, times=20)
    result = page(scene.rep, scene)
    assert names(result.items) == ["stored"]
    # Someone is waiting on the page: Gmail is asked once more (after a second), not
    # three times more over seven seconds as a sync asks it.
    assert 20 - sum(f.times for f in scene.gmail.failures) == 2
    assert result.notices == [
        f"Gmail did not answer for {ME} (Gmail answered 500: Backend Error): showing stored "
        "mail only."
    ]
    client = Client()
    client.force_login(scene.rep)
    response = client.get(reverse("web:record_detail", args=["contacts", scene.jane.pk]))
    assert response.status_code == 200
    assert "Gmail did not answer" in response.content.decode()


# --- sharing ---------------------------------------------------------------------------------


def test_a_colleague_sees_live_mail_only_as_the_owners_sharing_allows(scene):
    peer = scene.peer  # may view Jane (organisation defaults) and Rex shares publicly
    assert "Quote for July" in names(page(peer, scene).items)
    SharingSetting.objects.filter(user=scene.rep).update(mode="private")
    assert names(page(peer, scene).items) == ["stored"]
    assert (
        live.open_message(peer, scene.box.pk, scene.ids["newest"], "contacts", scene.jane.pk)
        is None
    )


def test_excluded_domains_hide_internal_live_mail_from_colleagues(scene):
    ExcludedDomain.objects.create(setting_id=scene.rep.pk, domain="acme.io")
    assert names(page(scene.peer, scene).items) == ["stored"]
    assert "Quote for July" in names(page(scene.rep, scene).items)  # the owner's own mail


def test_custom_sharing_shows_live_mail_on_shared_records_only(scene):
    from crmail.sharing.models import SharedRecord

    SharingSetting.objects.filter(user=scene.rep).update(mode="custom")
    assert names(page(scene.peer, scene).items) == ["stored"]
    SharedRecord.objects.create(setting_id=scene.rep.pk, module="contacts", record_id=scene.jane.pk)
    assert "Quote for July" in names(page(scene.peer, scene).items)


def test_a_record_shared_custom_shows_its_live_mail_whatever_the_excluded_domains(scene):
    """Excluded domains hold back public mail only: a record its owner shared custom
    shows all of its mail, internal mail too, live as stored."""
    from crmail.sharing.models import SharedRecord

    SharingSetting.objects.filter(user=scene.rep).update(mode="custom")
    ExcludedDomain.objects.create(setting_id=scene.rep.pk, domain="acme.io")
    SharedRecord.objects.create(setting_id=scene.rep.pk, module="contacts", record_id=scene.jane.pk)
    assert "Quote for July" in names(page(scene.peer, scene).items)


def test_a_viewer_who_may_not_view_the_record_gets_nothing_live(scene):
    ModuleDefault.objects.filter(module="contacts").update(level="private")
    outsider = f.user("olga@crmail.test")
    assert live.mailboxes_for(outsider, "contacts", scene.jane.pk, "all", None, None) == []
    found = live.open_message(
        outsider, scene.box.pk, scene.ids["newest"], "contacts", scene.jane.pk
    )
    assert found is None


# --- opening a message ----------------------------------------------------------------------


def test_a_live_message_opens_through_the_safe_display_and_is_asked_once(scene):
    raw_id = scene.gmail.add_message(
        mail(
            JANE,
            ME,
            "Styled",
            html='<p onclick="x()">Hi <script>alert(1)</script><img src="https://t.example/p.gif"></p>',
        ),
        internal_date=at(25),
    )
    client = Client()
    client.force_login(scene.peer)
    url = reverse("web:live_message", args=[scene.box.pk, raw_id])
    on = f"?on=contacts/{scene.jane.pk}"
    response = client.get(url + on)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Styled" in text and "1 remote image blocked" in text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in text
    body = client.get(reverse("web:live_message_body", args=[scene.box.pk, raw_id]) + on)
    assert "default-src 'none'" in body["Content-Security-Policy"]
    assert "<script" not in body.content.decode() and "onclick" not in body.content.decode()
    assert "t.example" not in body.content.decode()
    raw_gets = [
        r for r in scene.gmail.calls(f"/messages/{raw_id}") if r.query.get("format") == ["raw"]
    ]
    assert len(raw_gets) == 1  # the page and its frame: asked once, then from the cache
    # Without the record the colleague opens nothing; another record, nothing either.
    assert client.get(url).status_code == 404
    other = f.contact(scene.rep, "someone@else.io")
    assert client.get(url + f"?on=contacts/{other.pk}").status_code == 404
    # The owner opens their own mail from anywhere.
    owner = Client()
    owner.force_login(scene.rep)
    assert owner.get(url).status_code == 200
    # Each opening of the page is audited, by Mail ID (the frame is not a second one);
    # what was refused is not.
    opens = MessageOpen.objects.order_by("pk")
    assert [(o.viewer_id, o.mailbox_id, o.remote_id, o.module, o.record_id) for o in opens] == [
        (scene.peer.pk, scene.box.pk, raw_id, "contacts", scene.jane.pk),
        (scene.rep.pk, scene.box.pk, raw_id, "", None),
    ]
    assert all(o.message_id is None and o.message_sha256 == "" for o in opens)


def test_a_live_messages_attachment_downloads_under_the_same_rules(scene):
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = JANE, ME, "Signed contract"
    msg["Message-ID"] = "<contract@acme.io>"
    msg.set_content("Attached.")
    msg.add_attachment(b"%PDF-1.4 signed", maintype="application", subtype="pdf", filename="c.pdf")
    raw_id = scene.gmail.add_message(msg.as_bytes(), internal_date=at(26))
    client = Client()
    client.force_login(scene.peer)
    on = f"?on=contacts/{scene.jane.pk}"
    page_html = client.get(reverse("web:live_message", args=[scene.box.pk, raw_id]) + on)
    link = reverse("web:live_message_attachment", args=[scene.box.pk, raw_id, 2])
    assert f'href="{link}{on}"' in page_html.content.decode()
    got = client.get(link + on)
    assert got.status_code == 200 and got.content == b"%PDF-1.4 signed"
    assert got["Content-Disposition"].startswith("attachment")
    assert client.get(link).status_code == 404  # not from the record: not the peer's to open
    bad = reverse("web:live_message_attachment", args=[scene.box.pk, raw_id, 9])
    assert client.get(bad + on).status_code == 404


def test_a_live_messages_cid_image_shows_in_its_frame_for_who_may_open_it(scene):
    import re
    from email.message import EmailMessage

    from crmail.mail.downloads import live_inline_token

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = JANE, ME, "Our logo"
    msg.set_content("Logo")
    msg.add_alternative('<p>See <img src="cid:logo@acme"></p>', subtype="html")
    msg.get_payload()[1].add_related(
        b"\x89PNG\r\n\x1a\nlogo", maintype="image", subtype="png", cid="<logo@acme>"
    )
    raw_id = scene.gmail.add_message(msg.as_bytes(), internal_date=at(27))
    viewer = Client()
    viewer.force_login(scene.peer)
    on = f"contacts/{scene.jane.pk}"
    frame = viewer.get(reverse("web:live_message_body", args=[scene.box.pk, raw_id]), {"on": on})
    found = re.search(r'src="(/live/[^"]+/inline/(\d+)/\?s=[^"]+)"', frame.content.decode())
    assert found is not None
    src = found[1].replace("&amp;", "&")
    image = Client().get(src)  # the frame's request: no session
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert image["Content-Type"] == "image/png"
    assert Client().get(src + "x").status_code == 404  # altered
    # Named for someone who may not open the message there: nothing.
    stranger = f.user("stranger@crmail.test")
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "private"})
    part = int(found[2])
    forged = live_inline_token(scene.box.pk, raw_id, part, stranger.pk, on)
    url = reverse("web:live_message_inline", args=[scene.box.pk, raw_id, part])
    assert Client().get(url, {"s": forged}).status_code == 404


def test_another_mailboxes_mail_and_bad_ids_answer_404(scene):
    client = Client()
    client.force_login(scene.rep)
    other_box = build.mailbox(scene.peer, "pia@imap.test", active=False)
    on = f"?on=contacts/{scene.jane.pk}"
    assert (
        client.get(reverse("web:live_message", args=[other_box.pk, "abc"]) + on).status_code == 404
    )
    assert (
        client.get(reverse("web:live_message", args=[scene.box.pk, "a%20b"]) + on).status_code
        == 404
    )
    assert (
        client.get(reverse("web:live_message", args=[scene.box.pk, "ffff"]) + on).status_code == 404
    )


# --- the API ----------------------------------------------------------------------------------


def test_the_api_lists_live_items_and_reads_one(scene):
    api = ApiClient(scene.peer)
    answer = api.get(f"/contacts/{scene.jane.pk}/emails", {"limit": 2})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["live_mailboxes"] == 1 and body["count"] == 1
    first = body["items"][0]
    assert first["live"] is True and first["id"] is None and first["subject"] == "Quote for July"
    assert first["mailbox_id"] == scene.box.pk and first["from"]["address"] == JANE
    rest = api.get(f"/contacts/{scene.jane.pk}/emails", {"limit": 2, "cursor": body["next_cursor"]})
    assert [i["live"] for i in rest.json()["items"]] == [False, True]
    assert rest.json()["next_cursor"] is None
    read = api.get(first["api_url"].split("/api/v1", 1)[1])
    assert read.status_code == 200
    assert read.json()["headers"]["subject"] == "Quote for July"
    [audit] = MessageOpen.objects.all()
    assert (audit.viewer_id, audit.remote_id) == (scene.peer.pk, first["remote_id"])
    assert api.get(f"/contacts/{scene.jane.pk}/emails", {"cursor": "x"}).status_code == 422
    assert api.get(f"/contacts/{scene.jane.pk}/emails", {"offset": 2}).status_code == 422
    # A colleague reads no one else's mailbox directly.
    assert api.get(f"/mailboxes/{scene.box.pk}/live/{first['remote_id']}").status_code == 404
    assert (
        ApiClient(scene.rep).get(f"/mailboxes/{scene.box.pk}/live/{first['remote_id']}").status_code
        == 200
    )


def test_the_api_says_502_when_the_provider_fails_to_open_a_message(scene):
    scene.gmail.fail(500, "backendError", retry_after=None, times=20)
    answer = ApiClient(scene.rep).get(
        f"/contacts/{scene.jane.pk}/emails/live/{scene.box.pk}/{scene.ids['newest']}"
    )
    assert answer.status_code == 502
    assert "did not answer" in answer.json()["detail"]


# --- the sync, notifications and deactivation ----------------------------------------------


def _every_value() -> str:
    everything = every_value()
    assert "jane@acme.io" in everything  # the reading reaches the rows
    return everything


def test_the_sync_keeps_only_mail_id_from_and_received_time(
    scene, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(scene.box)
    fresh = scene.gmail.add_message(
        mail(
            f"Jane Quinn <{JANE}>",
            f"{ME}, secret-recipient@partner.io",
            "Secret subject line",
            body="Confidential body words",
        ),
        internal_date=timezone.now().timestamp(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_sync(Mailbox.objects.get(pk=scene.box.pk))
    rows = {(r.remote_id, r.sender) for r in LiveMail.objects.filter(mailbox=scene.box)}
    assert (fresh, JANE) in rows
    assert (scene.ids["other"], "bob@else.io") in rows
    assert scene.ids["middle"] not in {r for r, _ in rows}  # Sent, not the Inbox
    everything = _every_value()
    for word in (
        "Secret subject line",
        "Confidential body",
        "secret-recipient",
        "Quote for July",
        "Not Jane's",
        "First contact",
    ):
        assert word not in everything
    told = Notification.objects.get(user=scene.rep, live_mail__remote_id=fresh)
    assert told.title == "New mail from Pat Quinn (Contact)"
    assert told.message_id is None
    client = Client()
    client.force_login(scene.rep)
    opened = client.get(reverse("web:notification_open", args=[told.pk]), follow=True)
    assert opened.status_code == 200 and "Secret subject line" in opened.content.decode()
    # Old mail (there before the mailbox was connected) told of nothing.
    assert Notification.objects.filter(user=scene.rep).count() == 1


def test_alerts_off_keeps_nothing(scene):
    Mailbox.objects.filter(pk=scene.box.pk).update(customer_alerts=False)
    run_sync(Mailbox.objects.get(pk=scene.box.pk))
    assert not LiveMail.objects.exists()


def test_deactivating_the_mailbox_takes_its_mail_off_every_record_at_once(scene):
    run_sync(scene.box)
    assert LiveMail.objects.filter(mailbox=scene.box).exists()
    assert "Quote for July" in names(page(scene.peer, scene).items)
    mailbox_actions.deactivate_mailbox(scene.rep, scene.box, keep_mail=True)
    assert names(page(scene.peer, scene).items) == ["stored"]
    assert names(page(scene.rep, scene).items) == ["stored"]
    assert not LiveMail.objects.filter(mailbox=scene.box).exists()
    client = Client()
    client.force_login(scene.rep)
    url = reverse("web:live_message", args=[scene.box.pk, scene.ids["newest"]])
    assert client.get(url).status_code == 404


# --- the same through Microsoft Graph --------------------------------------------------------


def test_an_outlook_mailbox_through_graph_is_asked_live_and_synced_to_ids_only(settings):
    from crmail.mailboxes.tests.standins.graph import serve

    clear_cache()
    ModuleDefault.objects.update_or_create(module="contacts", defaults={"level": "public_read"})
    with serve() as graph:
        settings.CRMAIL_GRAPH_API_URL = graph.base_url
        owner = f.user("owen@crmail.test")
        box = f.api_mailbox(
            "graph", graph.address, graph.add_token(), owner=owner, keeps_copy=False
        )
        jane = f.contact(owner, JANE, last_name="Quinn")
        graph.deliver(
            mail(f"Jane <{JANE}>", graph.address, "Outlook hello", body="Private words"),
            received=datetime(2026, 6, 3, tzinfo=UTC),
        )
        graph.deliver(mail("bob@else.io", graph.address, "Other"))
        viewer = f.user("vic@crmail.test")
        from crmail.sharing import emails

        boxes = live.mailboxes_for(viewer, "contacts", jane.pk, "all", None, None)
        result = live.merged_page(
            viewer,
            "contacts",
            jane.pk,
            emails.record_emails(viewer, "contacts", jane.pk),
            boxes,
            cursor=None,
            limit=20,
        )
        assert names(result.items) == ["Outlook hello"]
        item = result.items[0]
        assert isinstance(item, live.LiveItem) and item.provider == "Outlook"
        opened = live.open_message(viewer, box.pk, item.message.remote_id, "contacts", jane.pk)
        assert opened is not None and opened.parsed is not None
        assert opened.parsed.subject == "Outlook hello"
        before = len(graph.steps)
        run_sync(box)
        assert set(LiveMail.objects.values_list("sender", flat=True)) == {JANE, "bob@else.io"}
        # From and received time alone were asked for, never a message's MIME.
        asked = [path for _, path in graph.steps[before:]]
        assert asked and all("$select=from,receivedDateTime" in p for p in asked)
        everything = _every_value()
        assert "Private words" not in everything and "Outlook hello" not in everything
    clear_cache()
