"""A Gmail mailbox through the Gmail API, against the local stand-in (standins/gmail.py):
keep-a-copy sync by history, changes made elsewhere, quota errors, two-way changes, the
live query and sending."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crmail.mail.models import Message
from crmail.mailboxes import twoway
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import (
    AppliesLabels,
    AuthFailed,
    MovesMessages,
    QueriesLive,
    RemoteFolder,
    Sends,
    SetsFlags,
)
from crmail.mailboxes.drivers.gmail import GmailConfig, GmailDriver
from crmail.mailboxes.models import Folder, Location, Mailbox, SyncState
from crmail.mailboxes.sync import resume_times, sync_mailbox
from crmail.mailboxes.tasks import due_mailboxes, run_sync
from crmail.mailboxes.tests.standins.gmail import FULL_SCOPE, GmailStandIn
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db

ME = "rep@gmail.test"


def mail(n: int, sender: str = "", to: str = ME, subject: str = "") -> bytes:
    sender = sender or f"client{n}@example.com"
    return (
        f"From: Client {n} <{sender}>\r\nTo: {to}\r\nSubject: {subject or f'Message {n}'}\r\n"
        f"Message-ID: <g{n}@example.com>\r\nDate: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"\r\nBody {n}\r\n"
    ).encode()


@pytest.fixture
def gmail(settings: Any) -> Any:
    with GmailStandIn(ME) as stand_in:
        stand_in.token("access-1")
        settings.CRMAIL_GMAIL_API_URL = stand_in.url
        yield stand_in


def gmail_mailbox(**fields: Any) -> Mailbox:
    return f.api_mailbox("gmail", ME, "access-1", **fields)


def sync(mailbox: Mailbox) -> Any:
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def in_view(labels: set[str], label: str) -> bool:
    """Gmail shows mail in Trash and Spam only there."""
    return label in labels and (label in ("TRASH", "SPAM") or not labels & {"TRASH", "SPAM"})


def on_gmail(gmail: GmailStandIn) -> set[tuple[str, str, bool, bool]]:
    """(label, id, read, starred) of every message in every label crmail keeps."""
    folders = ["INBOX", "SENT", "DRAFT", "SPAM", "TRASH", *gmail.user_labels]
    return {
        (label, m.id, "UNREAD" not in m.labels, "STARRED" in m.labels)
        for m in gmail.messages.values()
        for label in folders
        if in_view(m.labels, label)
    }


def in_crmail(mailbox: Mailbox) -> set[tuple[str, str, bool, bool]]:
    return {
        (loc.folder.remote_id, loc.remote_id, loc.seen, loc.flagged)
        for loc in Location.objects.filter(mailbox=mailbox).select_related("folder")
    }


def listed(gmail: GmailStandIn) -> list[Any]:
    """The messages.list calls so far."""
    return [r for r in gmail.requests if r.path == "/gmail/v1/users/me/messages"]


def api(gmail: GmailStandIn, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": "Bearer access-1", **kwargs.pop("headers", {})}
    return requests.request(method, gmail.url + path, headers=headers, timeout=10, **kwargs)


# -- the stand-in answers as Google does -------------------------------------------------------


def test_stand_in_refuses_what_gmail_refuses(gmail):
    mid = gmail.add_message(mail(1))
    unknown = api(gmail, "GET", "/gmail/v1/users/me/messages", params={"label": "INBOX"})
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and 'Unknown name "label"' in error["message"]
    assert error["errors"][0]["reason"] == "invalid"
    wrong_method = api(gmail, "GET", f"/gmail/v1/users/me/messages/{mid}/modify")
    assert wrong_method.status_code == 404 and "text/html" in wrong_method.headers["Content-Type"]
    bad_format = api(gmail, "GET", f"/gmail/v1/users/me/messages/{mid}", params={"format": "x"})
    assert bad_format.status_code == 400
    missing = api(gmail, "GET", "/gmail/v1/users/me/messages/0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    stranger = api(
        gmail, "GET", "/gmail/v1/users/me/profile", headers={"Authorization": "Bearer x"}
    )
    assert stranger.status_code == 401 and "invalid_token" in stranger.headers["WWW-Authenticate"]
    assert stranger.json()["error"]["errors"][0]["reason"] == "authError"
    extra_field = api(
        gmail, "POST", f"/gmail/v1/users/me/messages/{mid}/modify", json={"addLabels": ["X"]}
    )
    assert extra_field.status_code == 400
    gone = api(gmail, "GET", "/gmail/v1/users/me/history", params={"startHistoryId": "1"})
    assert gone.status_code == 200
    gmail.expire_history()
    gone = api(gmail, "GET", "/gmail/v1/users/me/history", params={"startHistoryId": "1"})
    assert gone.status_code == 404
    gmail.fail(429, "userRateLimitExceeded", retry_after=7)
    busy = api(gmail, "GET", "/gmail/v1/users/me/labels")
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "7"
    assert busy.json()["error"]["errors"][0]["reason"] == "userRateLimitExceeded"
    assert busy.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_stand_in_pages_and_searches_like_gmail(gmail):
    for n in range(7):
        gmail.add_message(mail(n, sender="ada@acme.io" if n % 2 else "bob@other.io"))
    first = api(
        gmail,
        "GET",
        "/gmail/v1/users/me/messages",
        params={"q": "from:ada@acme.io", "maxResults": 2},
    ).json()
    assert first["resultSizeEstimate"] == 3 and len(first["messages"]) == 2
    rest = api(
        gmail,
        "GET",
        "/gmail/v1/users/me/messages",
        params={"q": "from:ada@acme.io", "maxResults": 2, "pageToken": first["nextPageToken"]},
    ).json()
    assert len(rest["messages"]) == 1 and "nextPageToken" not in rest
    other_query = api(
        gmail,
        "GET",
        "/gmail/v1/users/me/messages",
        params={"q": "from:bob@other.io", "pageToken": first["nextPageToken"]},
    )
    assert other_query.status_code == 400


def test_stand_in_batches_answer_each_part_and_refuse_too_many(gmail):
    ids = [gmail.add_message(mail(n)) for n in range(2)]

    def batch(count: int) -> requests.Response:
        parts = "".join(
            f"--b\r\nContent-Type: application/http\r\nContent-ID: <q{i}>\r\n\r\n"
            f"GET /gmail/v1/users/me/messages/{ids[i % 2]}?format=minimal HTTP/1.1\r\n\r\n"
            for i in range(count)
        )
        return api(
            gmail,
            "POST",
            "/batch/gmail/v1",
            data=parts + "--b--\r\n",
            headers={"Content-Type": "multipart/mixed; boundary=b"},
        )

    answer = batch(2)
    assert answer.status_code == 200 and answer.text.count("HTTP/1.1 200 OK") == 2
    assert "Content-ID: <response-q1>" in answer.text
    assert batch(101).status_code == 400


def test_quota_errors_in_403_and_429_are_waited_for(gmail):
    waits: list[float] = []
    driver = GmailDriver(
        GmailConfig(email=ME, token="access-1", api_url=gmail.url), sleep=waits.append
    )
    gmail.fail(403, "rateLimitExceeded", retry_after=4)
    gmail.fail(429, "userRateLimitExceeded", retry_after=None)
    driver.connect()
    assert waits[0] == 4 and 2 <= waits[1] <= 3  # the server's wait, then one of our own
    assert driver.history_id


# -- the driver's capabilities ------------------------------------------------------------


def test_the_driver_declares_what_gmail_can_do():
    for capability in (SetsFlags, MovesMessages, AppliesLabels, QueriesLive, Sends):
        assert issubclass(GmailDriver, capability)


def test_a_refused_token_is_renewed_once_then_reported(gmail):
    gmail.token("access-2")
    driver = GmailDriver(
        GmailConfig(email=ME, token="expired", api_url=gmail.url), renew_token=lambda: "access-2"
    )
    driver.connect()
    assert [f.role for f in driver.list_folders() if f.remote_id == "INBOX"] == ["inbox"]
    refused = GmailDriver(GmailConfig(email=ME, token="expired", api_url=gmail.url))
    with pytest.raises(AuthFailed, match="sign in with Google again"):
        refused.connect()


def test_live_query_lists_a_records_mail_newest_first_in_pages(gmail):
    for n in range(30):
        sender = "ada@acme.io" if n % 3 == 0 else f"other{n}@example.com"
        gmail.add_message(mail(n, sender=sender))
    gmail.add_message(mail(40, sender=ME, to="Ada <ada@acme.io>"), labels=["SENT"])
    gmail.add_message(mail(41, sender="eve@elsewhere.io", subject="ada@acme.io in subject"))
    driver = open_driver(gmail_mailbox())
    assert isinstance(driver, QueriesLive)
    first = driver.query(["ADA@acme.io", "not an address"], limit=6)
    assert [m.subject for m in first.messages] == [
        "Message 40",
        "Message 27",
        "Message 24",
        "Message 21",
        "Message 18",
        "Message 15",
    ]
    assert first.messages[0].recipients == ("ada@acme.io",)
    assert first.messages[1].sender == "Client 27 <ada@acme.io>"
    assert first.next_page
    second = driver.query(["ada@acme.io"], page=first.next_page, limit=6)
    assert [m.subject for m in second.messages] == [f"Message {n}" for n in (12, 9, 6, 3, 0)]
    assert second.next_page is None
    assert driver.query(["not an address"]).messages == []
    gets = gmail.calls("GET /gmail/v1/users/me/messages/")
    assert gets and all(r.in_batch and r.query["format"] == ["metadata"] for r in gets)
    driver.close()


def test_sending_hands_the_message_to_gmail_which_keeps_the_sent_copy(gmail):
    driver = open_driver(gmail_mailbox())
    assert isinstance(driver, Sends)
    raw = b"From: rep@gmail.test\r\nTo: ada@acme.io\r\nSubject: Offer\r\n\r\nHello\r\n"
    driver.send(ME, ["ada@acme.io", "boss@crmail.test"], raw)
    (sent,) = gmail.sent
    assert sent.startswith(b"Bcc: boss@crmail.test\r\n")
    (copy,) = [m for m in gmail.messages.values() if "SENT" in m.labels]
    assert b"boss@crmail.test" not in copy.raw
    driver.close()


def test_labels_are_created_once_and_put_on_messages(gmail):
    mid = gmail.add_message(mail(1))
    driver = open_driver(gmail_mailbox())
    assert isinstance(driver, AppliesLabels)
    made = driver.create_label("Open Deals")
    assert driver.create_label("Open Deals") == made  # already there: the same label
    driver.change_labels(mid, [made.remote_id], ["INBOX"])
    assert gmail.labels_of(mid) == {made.remote_id, "UNREAD"}
    assert [label.name for label in driver.list_labels()] == ["Open Deals"]
    driver.close()


# -- keep a copy: the sync engine through the API ------------------------------------------


def test_first_sync_then_changes_made_in_gmail_arrive_by_history(gmail):
    customers = gmail.add_label("Customers")
    ids = [gmail.add_message(mail(n)) for n in range(4)]
    gmail.modify(ids[0], add=[customers])
    gmail.add_message(mail(10, sender=ME, to="ada@acme.io"), labels=["SENT"])
    mailbox = gmail_mailbox()
    report = sync(mailbox)
    assert report.fetched == 6  # four in Inbox, one of them also under Customers, one sent
    assert Message.objects.count() == 5
    assert in_crmail(mailbox) == on_gmail(gmail)
    assert {f.remote_id: f.role for f in Folder.objects.filter(mailbox=mailbox)} == {
        "INBOX": "inbox",
        "SENT": "sent",
        "DRAFT": "drafts",
        "SPAM": "junk",
        "TRASH": "trash",
        customers: "",
    }
    assert Folder.objects.get(mailbox=mailbox, remote_id=customers).name == "Customers"

    # Another client reads, stars, files, archives, trashes and deletes; new mail arrives.
    gmail.modify(ids[1], remove=["UNREAD"], add=["STARRED"])
    gmail.modify(ids[2], add=[customers], remove=["INBOX"])
    gmail.trash(ids[3])
    gmail.delete(ids[0])
    new = gmail.add_message(mail(20))
    listings = len(listed(gmail))
    report = sync(mailbox)
    assert in_crmail(mailbox) == on_gmail(gmail)
    assert len(listed(gmail)) == listings  # no label listed again: the history said it all
    assert len(gmail.calls("GET /gmail/v1/users/me/history")) == 1  # one scan for all labels
    assert report.fetched == 3  # the new one; ids[2] under Customers; ids[3] in Trash
    assert Message.objects.count() == 6
    assert Location.objects.get(mailbox=mailbox, remote_id=new, folder__remote_id="INBOX")
    assert sync(mailbox).fetched == 0
    driver = open_driver(mailbox)
    try:
        assert verify_mailbox(mailbox, driver).agrees
    finally:
        driver.close()


def test_expired_history_lists_again_without_fetching_or_duplicating(gmail):
    ids = [gmail.add_message(mail(n)) for n in range(5)]
    mailbox = gmail_mailbox()
    sync(mailbox)
    gmail.modify(ids[0], remove=["UNREAD"])
    gmail.delete(ids[1])
    gmail.expire_history()
    gmail.modify(ids[2], add=["STARRED"])
    gmail.add_message(mail(9))
    report = sync(mailbox)
    assert report.fetched == 1  # only the new message: the others are matched by their ids
    assert Message.objects.count() == 6
    assert Location.objects.filter(mailbox=mailbox).count() == 5
    assert in_crmail(mailbox) == on_gmail(gmail)
    assert sync(mailbox).fetched == 0


def test_a_short_retry_after_is_waited_out_and_the_sync_carries_on(gmail):
    for n in range(3):
        gmail.add_message(mail(n))
    gmail.fail(429, "rateLimitExceeded", retry_after=1, match="/messages/")
    mailbox = gmail_mailbox()
    report = sync(mailbox)
    assert report.fetched == 3 and not report.paused
    assert in_crmail(mailbox) == on_gmail(gmail)
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.COMPLETED


def test_a_long_retry_after_pauses_the_sync_says_why_and_resumes_then(gmail):
    for n in range(3):
        gmail.add_message(mail(n))
    gmail.fail(429, "userRateLimitExceeded", retry_after=3600, times=50, match="/messages")
    mailbox = gmail_mailbox()
    before = timezone.now()
    report = run_sync(mailbox)
    assert report.paused
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.PAUSED
    assert mailbox.last_error == (
        "Gmail asks crmail to slow down (too many requests); crmail carries on in about 1 hour."
    )
    # The scheduler leaves it alone for the hour Gmail asked for, and takes it up after.
    resume = resume_times([mailbox.pk])[mailbox.pk]
    assert before + timedelta(hours=1) <= resume <= timezone.now() + timedelta(hours=1)
    assert mailbox.pk not in due_mailboxes(resume - timedelta(minutes=1))
    assert mailbox.pk in due_mailboxes(resume + timedelta(seconds=1))
    client = Client()
    client.force_login(mailbox.owner)
    for url in (reverse("web:mailbox_detail", args=[mailbox.pk]), reverse("web:mailboxes")):
        html = client.get(url).content.decode()
        assert "Paused at the provider&#x27;s request" in html
        assert "crmail carries on in about 1 hour" in html
        assert "daily limit" not in html
    gmail.failures.clear()
    assert run_sync(mailbox).fetched == 3
    mailbox.refresh_from_db()
    assert mailbox.state == SyncState.COMPLETED and mailbox.last_error == ""


# -- two-way: crmail's changes go to Gmail first ------------------------------------------------


def test_read_flag_move_and_delete_in_crmail_change_gmail(gmail):
    archive = gmail.add_label("Archive")
    ids = [gmail.add_message(mail(n)) for n in range(3)]
    mailbox = gmail_mailbox()
    sync(mailbox)
    owner = mailbox.owner

    def copy(mid: str) -> Location:
        return Location.objects.select_related("folder", "mailbox").get(
            mailbox=mailbox, remote_id=mid, folder__remote_id="INBOX"
        )

    twoway.set_seen(owner, copy(ids[0]), True)
    twoway.set_flagged(owner, copy(ids[0]), True)
    assert gmail.labels_of(ids[0]) == {"INBOX", "STARRED"}
    twoway.set_seen(owner, copy(ids[0]), False)
    assert "UNREAD" in gmail.labels_of(ids[0])
    moved = twoway.move(
        owner, copy(ids[1]), Folder.objects.get(mailbox=mailbox, remote_id=archive).pk
    )
    assert moved is not None and moved.folder.remote_id == archive
    assert gmail.labels_of(ids[1]) == {archive, "UNREAD"}
    trashed = twoway.delete(owner, copy(ids[2]))
    assert trashed is not None and trashed.folder.role == "trash"
    assert "TRASH" in gmail.labels_of(ids[2])
    with pytest.raises(twoway.Refused, match="empties its Trash after 30 days"):
        twoway.delete(owner, trashed)
    assert "TRASH" in gmail.labels_of(ids[2])  # nothing changed on either side
    assert Location.objects.filter(pk=trashed.pk).exists()
    assert sync(mailbox).fetched == 0
    assert in_crmail(mailbox) == on_gmail(gmail)


def test_deleting_from_trash_with_full_access_deletes_for_good(gmail):
    gmail.token("access-1", scopes=[FULL_SCOPE])
    mid = gmail.add_message(mail(1), labels=["TRASH"])
    mailbox = gmail_mailbox()
    sync(mailbox)
    trashed = Location.objects.select_related("folder", "mailbox").get(mailbox=mailbox)
    assert twoway.delete(mailbox.owner, trashed) is None
    assert mid not in gmail.messages
    assert sync(mailbox).fetched == 0
    assert in_crmail(mailbox) == on_gmail(gmail) == set()


def test_a_gmail_mailbox_without_a_google_sign_in_says_so(gmail):
    mailbox = gmail_mailbox(auth_method="password", secret="")
    with pytest.raises(AuthFailed, match="signs in with Google"):
        open_driver(mailbox)
    assert RemoteFolder("INBOX", "Inbox", "inbox").role == "inbox"


def test_mail_sent_from_crmail_goes_through_gmail_which_files_it_in_sent(gmail):
    from crmail.mail.compose import Draft
    from crmail.mailboxes.sending import send_message

    mailbox = gmail_mailbox(is_active=True)
    draft = Draft(
        sender=ME, to=["ada@acme.io"], bcc=["boss@crmail.test"], subject="Offer", text="Hello"
    )
    sent = send_message(mailbox.owner, draft, mailbox=mailbox)
    (handed,) = gmail.sent
    assert b"Subject: Offer" in handed and b"Bcc: boss@crmail.test" in handed
    assert sent.recipients == ["ada@acme.io", "boss@crmail.test"]
    assert sent.sent_copy_error == ""
    assert len(gmail.ids_with("SENT")) == 1  # Gmail's own copy; crmail appended none
    sync(mailbox)
    (copy,) = Location.objects.filter(mailbox=mailbox, folder__remote_id="SENT")
    assert copy.message_id == sent.message_id  # the same content: one message in crmail


def test_imaps_daily_transfer_cap_does_not_hold_back_the_api(gmail):
    mailbox = gmail_mailbox(bytes_day=timezone.localdate(), bytes_today=3 * 1024**3)
    gmail.add_message(mail(1))
    assert sync(mailbox).fetched == 1  # Gmail's 2.5 GB a day is IMAP's limit
