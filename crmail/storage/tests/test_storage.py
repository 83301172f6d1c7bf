"""Email storage's warnings, figures, page, API and command (SPEC F11)."""

from __future__ import annotations

from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
from django.test import Client

from crmail.api.tests.conftest import ApiClient
from crmail.config.cli import main
from crmail.mail.models import WaitingBody
from crmail.mail.store import store_many
from crmail.mailboxes import quota, usage
from crmail.mailboxes.models import WHOLE, Location, StorageUsage
from crmail.notifications.models import Kind, Notification
from crmail.sharing.tests import build
from crmail.storage import chart, history, thresholds
from crmail.storage.models import UsageDay

pytestmark = pytest.mark.django_db
KB = 1000


@pytest.fixture
def small(settings, org):
    """Licences of 10 kB: the org's five users make a quota of 50 kB."""
    settings.STORAGE_BYTES_PER_LICENCE = 10 * KB
    settings.CRMAIL_STORAGE_EXTRA_GB = None
    quota.forget()
    yield org
    quota.forget()


@pytest.fixture
def sink(settings, smtp_sink):
    settings.CRMAIL_SMTP_URL = f"smtp://{smtp_sink.host}:{smtp_sink.port}?tls=none"
    settings.CRMAIL_MAIL_FROM = "crmail@crm.example.com"
    return smtp_sink


def set_used(user, nbytes: int, messages: int = 1) -> None:
    StorageUsage.objects.update_or_create(
        user=user, mailbox_id=WHOLE, defaults={"bytes": nbytes, "messages": messages}
    )


def storage_notes(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user, kind=Kind.STORAGE).order_by("pk"))


def test_warnings_go_to_administrators_once_per_threshold_crossing(small, sink):
    org = small
    set_used(org.rep, 30 * KB)  # 60 %
    assert thresholds.check().raised == []
    set_used(org.rep, 41 * KB)  # 82 %
    assert thresholds.check().raised == [80]
    assert thresholds.check().raised == []  # told once
    notes = storage_notes(org.admin)
    assert len(notes) == 1 and "80 % full" in notes[0].title
    assert notes[0].link == "/settings/storage/"
    assert storage_notes(org.rep) == []  # administrators only
    mailed = sink.wait_for(1)
    assert mailed[0].rcpt_tos == [org.admin.email]
    body = message_from_bytes(mailed[0].data, policy=policy.default)
    assert "80 % full" in body["Subject"] and "Add storage" in body.get_content()

    set_used(org.rep, 49 * KB)  # 98 %
    assert thresholds.check().raised == [95]
    set_used(org.rep, 10 * KB)  # back to 20 %: both cleared
    assert thresholds.check().cleared == [80, 95]
    set_used(org.rep, 60 * KB)  # straight past everything: one warning, the highest
    assert thresholds.check().raised == [80, 95, 100]
    titles = [n.title for n in storage_notes(org.admin)]
    assert len(titles) == 3 and "full: 60.0 kB of 50.0 kB used" in titles[-1]
    assert len(sink.wait_for(3)) == 3


def test_without_crmails_own_mail_server_the_notification_still_goes(small, settings):
    settings.CRMAIL_SMTP_URL = ""
    set_used(small.rep, 45 * KB)
    assert thresholds.check().raised == [80]
    assert len(storage_notes(small.admin)) == 1


def test_opening_a_storage_notification_opens_the_storage_page(small):
    set_used(small.rep, 45 * KB)
    thresholds.check()
    client = Client()
    client.force_login(small.admin)
    note = storage_notes(small.admin)[0]
    response = client.get(f"/notifications/{note.pk}/")
    assert response.status_code == 302 and response["Location"] == "/settings/storage/"


def test_growth_keeps_each_days_last_figure(small):
    set_used(small.rep, 5 * KB)
    history.snapshot(date.today() - timedelta(days=3))
    set_used(small.rep, 7 * KB)
    history.snapshot()
    set_used(small.rep, 9 * KB)
    history.snapshot()
    assert UsageDay.objects.count() == 2
    points = history.growth(90)
    assert [size for _, size in points] == [5 * KB, 9 * KB]
    assert history.grown_since(30)[small.rep.pk] == 4 * KB
    svg = chart.growth_svg(points, 50 * KB)
    assert svg.startswith("<svg") and "Quota 50.0 kB" in svg and "<polyline" in svg
    assert "No figures yet" in chart.growth_svg([], 50 * KB)


def mail(n: int, kb: int = 2) -> bytes:
    return (
        f"From: a@x.test\r\nSubject: {n}\r\nMessage-ID: <{n}@x>\r\n\r\n" + "b" * (kb * KB)
    ).encode()


def test_the_api_gives_administrators_everything_and_others_their_own(small):
    org = small
    box = build.mailbox(org.rep)
    for message in store_many([mail(1), mail(2)]):
        build.place(message, box)
    admin_view = ApiClient(org.admin).get("/storage")
    assert admin_view.status_code == 200
    body = admin_view.json()
    held = sum(Location.objects.values_list("message__size", flat=True))
    assert body["organisation"]["used"] == held
    assert body["organisation"]["quota"] == {
        "total": 50 * KB,
        "base": 50 * KB,
        "licences": 5,
        "per_licence": 10 * KB,
        "ceiling": 100 * 10**9,
        "extra_gb": 0,
        "extra_from_environment": False,
    }
    assert body["count"] == 5 and body["items"][0]["email"] == org.rep.email
    assert body["items"][0]["bytes"] == held and body["mailboxes"][0]["mailbox_id"] == box.pk

    mine = ApiClient(org.peer).get("/storage").json()
    assert mine["organisation"] is None
    assert [u["email"] for u in mine["items"]] == [org.peer.email] and mine["mailboxes"] == []
    theirs = ApiClient(org.rep).get("/storage").json()
    assert theirs["items"][0]["bytes"] == held and len(theirs["mailboxes"]) == 1
    assert ApiClient(org.admin).get("/storage", {"limit": 0}).status_code == 422
    assert ApiClient(None).get("/storage").status_code == 401


def test_storage_show_and_recount_say_what_they_find(small, capsys):
    org = small
    box = build.mailbox(org.rep)
    for message in store_many([mail(1), mail(2, kb=3)]):
        build.place(message, box)
    StorageUsage.objects.filter(user=org.rep, mailbox_id=WHOLE).update(bytes=1)  # off
    assert main(["storage", "recount"]) == 0
    out = capsys.readouterr().out
    assert "1 figure corrected" in " ".join(out.split())
    assert main(["storage", "recount"]) == 0
    assert "every figure was right" in capsys.readouterr().out
    assert main(["storage", "show"]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "used of 50.0 kB" in out and org.rep.email in out
    assert "for each of 5 active users" in out


def test_the_storage_page_is_for_administrators_and_refuses_bad_input(small, settings):
    client = Client()
    client.force_login(small.rep)
    assert client.get("/settings/storage/").status_code == 403
    client.force_login(small.admin)
    page = client.get("/settings/storage/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<svg" in text and "Largest mailboxes" in text and "Add storage" in text
    for bad in ("-1", "lots", "", "1.5", str(quota.MAX_EXTRA_GB + 1)):
        answer = client.post("/settings/storage/", {"extra_gb": bad})
        assert answer.status_code == 200, bad
        assert "The storage added was not changed" in answer.content.decode(), bad
    done = client.post("/settings/storage/", {"extra_gb": "3"}, follow=True)
    assert "with 3 GB added" in done.content.decode()
    assert quota.current().extra_gb == 3
    settings.CRMAIL_STORAGE_EXTRA_GB = 9
    text = client.get("/settings/storage/").content.decode()
    assert "CRMAIL_STORAGE_EXTRA_GB" in text and 'name="extra_gb"' not in text


def test_a_message_whose_body_waits_says_so_and_offers_to_fetch_it(small):
    org = small
    box = build.mailbox(org.rep)
    (message,) = store_many([mail(1)], room=0)
    build.place(message, box)
    assert WaitingBody.objects.filter(message=message).exists()
    client = Client()
    client.force_login(org.rep)
    text = client.get(f"/messages/{message.pk}/").content.decode()
    assert "The body of this message waits on the mail server" in text
    assert f"/messages/{message.pk}/fetch-body/" in text
    download = client.get(f"/messages/{message.pk}/original/", follow=True)
    assert "fetch the whole message first" in download.content.decode()
    for mode in ("reply", "forward"):  # the composer says what is missing from the quote
        compose = client.get(f"/compose/?message={message.pk}&mode={mode}").content.decode()
        assert "still waits on the mail server" in compose
    # The test mailbox's server is not there: the reason is said, nothing breaks.
    answer = client.post(f"/messages/{message.pk}/fetch-body/", follow=True)
    assert answer.status_code == 200
    assert WaitingBody.objects.filter(message=message).exists()
    api = ApiClient(org.rep).get(f"/messages/{message.pk}").json()
    assert api["body_waits"] is True
    fetched = ApiClient(org.rep).post(f"/messages/{message.pk}/fetch-body")
    assert fetched.status_code == 502 and "could not be fetched" in fetched.json()["detail"]
    assert (
        ApiClient(org.outsider_manager).post(f"/messages/{message.pk}/fetch-body").status_code
        == 404
    )
    assert usage.recount().corrected == []
