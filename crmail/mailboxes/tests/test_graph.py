"""Outlook through Microsoft Graph, keeping a copy: the sync engine, two-way changes and
sending against the Graph stand-in (``standins/graph.py``)."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone

from crmail.mail.compose import Draft
from crmail.mail.models import Message
from crmail.mail.store import raw_bytes
from crmail.mailboxes import twoway
from crmail.mailboxes.actions import mailbox_status
from crmail.mailboxes.connect import can, open_driver
from crmail.mailboxes.drivers.base import (
    Appends,
    AuthFailed,
    CreatesFolders,
    DeletesFolders,
    DriverError,
    MovesMessages,
    QueriesLive,
    ReadsSenders,
    Sends,
    SetsFlags,
    WaitsForNews,
)
from crmail.mailboxes.drivers.graph import GraphConfig, GraphDriver
from crmail.mailboxes.models import Folder, Location, Mailbox, SentMessage, SyncState
from crmail.mailboxes.sending import send_message, sent_copy_outcome
from crmail.mailboxes.sync import sync_mailbox
from crmail.mailboxes.tasks import due_mailboxes, run_sync
from crmail.mailboxes.tests.standins.graph import GraphState, serve
from crmail.mailboxes.verify import verify_mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


def mail(n: int, *, to: str = "alice@contoso.test", sender: str = "") -> bytes:
    sender = sender or f"client{n}@example.com"
    return (
        f"From: Client {n} <{sender}>\r\nTo: {to}\r\nSubject: Message {n}\r\n"
        f"Message-ID: <g{n}@example.com>\r\nDate: Mon, 02 Nov 2026 10:{n % 60:02d}:00 +0000\r\n"
        f"\r\nBody {n}\r\n"
    ).encode()


def at(minute: int) -> datetime:
    return datetime(2026, 11, 2, 10, minute, tzinfo=UTC)


@pytest.fixture
def graph() -> Iterator[GraphState]:
    with serve() as state:
        yield state


@pytest.fixture
def outlook(graph: GraphState, settings) -> Mailbox:
    settings.CRMAIL_GRAPH_API_URL = graph.base_url
    return f.api_mailbox("graph", graph.address, graph.add_token(), owner=f.user(graph.address))


def sync(mailbox: Mailbox):
    driver = open_driver(mailbox)
    try:
        return sync_mailbox(mailbox, driver)
    finally:
        driver.close()


def stored(mailbox: Mailbox, folder: str = "Inbox") -> dict[str, Location]:
    return {
        loc.remote_id: loc
        for loc in Location.objects.filter(mailbox=mailbox, folder__name=folder).select_related(
            "message"
        )
    }


def assert_matches(graph: GraphState, mailbox: Mailbox) -> None:
    """Every synced folder holds what the service holds, flag by flag, once each."""
    for folder in mailbox.folders.filter(sync_enabled=True):
        there = graph.in_folder(folder.remote_id)
        here = stored(mailbox, folder.name)
        assert set(here) == set(there), folder.name
        for mid, loc in here.items():
            assert loc.seen == there[mid].is_read
            assert loc.flagged == (there[mid].flag == "flagged")
            assert bytes(loc.message.message_id.encode()) in there[mid].raw
    driver = open_driver(mailbox)
    try:
        assert verify_mailbox(mailbox, driver).agrees
    finally:
        driver.close()


def test_the_driver_says_what_it_can(outlook):
    for capability in (
        SetsFlags,
        MovesMessages,
        QueriesLive,
        Sends,
        ReadsSenders,
        CreatesFolders,
        DeletesFolders,
    ):
        assert can(outlook, capability)
    assert not can(outlook, Appends) and not can(outlook, WaitsForNews)
    assert twoway.two_way(outlook)


def test_first_sync_stores_every_folder_with_roles_and_flags(graph, outlook):
    graph.create_folder("Projects")
    graph.create_folder("2026", parent="Projects")
    for n in range(25):  # more than one page of the delta listing
        graph.deliver(mail(n), is_read=n % 3 == 0, flagged=n == 4, received=at(n))
    graph.deliver(mail(40), "Projects", received=at(40))
    graph.deliver(mail(41), "2026", received=at(41))
    graph.deliver(mail(42), "sentitems", is_read=True, received=at(42))
    report = sync(outlook)
    outlook.refresh_from_db()
    assert outlook.state == SyncState.COMPLETED and report.fetched == 28
    roles = dict(Folder.objects.filter(mailbox=outlook).values_list("name", "role"))
    assert roles["Inbox"] == "inbox" and roles["Sent Items"] == "sent"
    assert roles["Deleted Items"] == "trash" and roles["Junk Email"] == "junk"
    assert roles["Projects"] == "" and "Projects/2026" in roles
    assert Message.objects.count() == 28
    assert_matches(graph, outlook)
    assert all(not m.is_read for i, m in enumerate(graph.in_folder("inbox").values()) if i % 3)
    # Nothing changed: the stored delta links answer nothing new, nothing is fetched.
    assert sync(outlook).fetched == 0


def test_the_delta_links_bring_new_mail_flags_moves_and_deletions(graph, outlook):
    ids = [graph.deliver(mail(n), received=at(n)) for n in range(4)]
    graph.create_folder("Archive 2026")
    sync(outlook)
    graph.set_read(ids[0])
    graph.set_flag(ids[1])
    moved = graph.move(ids[2], "Archive 2026")
    graph.remove(ids[3])
    new = graph.deliver(mail(9), received=at(9))
    graph.requests.clear()
    report = sync(outlook)
    # The new one, and the moved one under its new id (stored once: same content).
    assert report.fetched == 2 and report.removed == 2
    inbox = stored(outlook)
    assert set(inbox) == {ids[0], ids[1], new}
    assert inbox[ids[0]].seen and inbox[ids[1]].flagged
    assert set(stored(outlook, "Archive 2026")) == {moved}
    assert Message.objects.count() == 5  # the moved message is stored once
    assert any("$deltatoken=" in path for _, path in graph.requests)
    assert_matches(graph, outlook)


def test_an_expired_delta_link_lists_again_without_duplicates(graph, outlook):
    ids = [graph.deliver(mail(n), received=at(n)) for n in range(3)]
    sync(outlook)
    graph.void_delta_tokens("syncStateNotFound")
    graph.remove(ids[0])
    graph.set_read(ids[1])
    graph.deliver(mail(7), received=at(7))
    report = sync(outlook)
    outlook.refresh_from_db()
    assert outlook.state == SyncState.COMPLETED
    assert report.fetched == 1 and report.removed == 1
    assert stored(outlook)[ids[1]].seen
    assert Location.objects.filter(mailbox=outlook).count() == 3
    assert Message.objects.count() == 4
    assert_matches(graph, outlook)
    graph.void_delta_tokens("resyncRequired")
    assert sync(outlook).fetched == 0
    assert_matches(graph, outlook)


def test_throttling_pauses_the_sync_for_the_time_graph_asks(graph, outlook):
    for n in range(6):
        graph.deliver(mail(n), received=at(n))
    graph.fail(429, retry_after=120, path="/$value")
    report = run_sync(outlook)
    outlook.refresh_from_db()
    assert report.paused and outlook.state == SyncState.PAUSED
    assert "slow down" in outlook.last_error and "2 minutes" in outlook.last_error
    assert outlook.pk not in due_mailboxes()
    status = mailbox_status(outlook)
    assert status.state_label == "Paused at the provider's request"
    assert "slow down" in status.last_error
    assert outlook.pk in due_mailboxes(timezone.now() + timedelta(minutes=3))
    # The wait is over: the sync carries on where it stopped, nothing stored twice.
    report = run_sync(outlook)
    outlook.refresh_from_db()
    assert outlook.state == SyncState.COMPLETED and outlook.last_error == ""
    assert Location.objects.filter(mailbox=outlook).count() == 6
    assert_matches(graph, outlook)


def test_a_short_retry_after_is_waited_out_within_the_sync(graph, outlook):
    graph.deliver(mail(1))
    graph.fail(429, retry_after=1, path="/$value")
    report = sync(outlook)
    assert report.fetched == 1 and not report.paused
    assert sum(1 for _, path in graph.steps if path.endswith("/$value")) == 2


def test_messages_are_fetched_twenty_a_request_and_kept_byte_for_byte(graph, outlook):
    # JSON batching: 45 messages in three requests, each message's MIME handed over in
    # base64 and stored exactly as Outlook holds it; one removed after the listing is
    # left for the next round, and a step that fails for good stops the sync in words.
    ids = [graph.deliver(mail(n) + bytes(range(256)), received=at(n)) for n in range(45)]
    driver = open_driver(outlook)
    try:
        inbox = next(f for f in driver.list_folders() if f.role == "inbox")
        listed = driver.changes(inbox, None).new_ids
        graph.remove(ids[7])
        before = len(graph.requests)
        fetched = list(driver.fetch(inbox, listed))
        outer = [p for m, p in graph.requests[before:] if m == "POST"]
        assert outer == ["/v1.0/$batch"] * 3
        assert [m.remote_id for m in fetched] == [i for i in listed if i != ids[7]]
        assert all(m.raw == graph.messages[m.remote_id].raw for m in fetched)
        graph.fail(500, path=f"/{ids[3]}/$value")
        with pytest.raises(DriverError, match="HTTP 500"):
            list(driver.fetch(inbox, listed[:5]))
    finally:
        driver.close()


def test_throttled_while_connecting_pauses_too(graph, outlook):
    graph.fail(429, retry_after=600, path="/me")
    with pytest.raises(Exception, match="slow down"):
        run_sync(outlook)
    outlook.refresh_from_db()
    assert outlook.state == SyncState.PAUSED and "10 minutes" in outlook.last_error


def test_a_refused_token_is_an_oauth_failure_open_driver_renews_once(graph):
    driver = GraphDriver(GraphConfig(token=lambda: "not-a-token", base_url=graph.base_url))
    with pytest.raises(AuthFailed) as err:
        driver.connect()
    assert err.value.kind == "oauth_revoked" and "not-a-token" not in str(err.value)
    driver.close()


def test_links_off_the_api_are_not_followed(graph, outlook):
    driver = open_driver(outlook)
    try:
        assert isinstance(driver, QueriesLive)
        with pytest.raises(DriverError, match="outside its API"):
            driver.query([], page="https://attacker.example/v1.0/me/messages?$skiptoken=x")
    finally:
        driver.close()
    assert all(path.startswith("/v1.0/") for _, path in graph.requests)


def test_read_flag_move_and_delete_in_crmail_reach_outlook(graph, outlook):
    ids = [graph.deliver(mail(n), received=at(n)) for n in range(3)]
    graph.create_folder("Clients")
    sync(outlook)
    owner = outlook.owner
    inbox = stored(outlook)
    twoway.set_seen(owner, inbox[ids[0]], True)
    twoway.set_flagged(owner, inbox[ids[1]], True)
    assert graph.messages[ids[0]].is_read and graph.messages[ids[1]].flag == "flagged"
    twoway.set_seen(owner, inbox[ids[0]], False)
    assert not graph.messages[ids[0]].is_read
    clients = Folder.objects.get(mailbox=outlook, name="Clients")
    moved = twoway.move(owner, inbox[ids[1]], clients.pk)
    assert moved is not None and moved.folder_id == clients.pk
    assert set(graph.in_folder("Clients")) == {moved.remote_id}
    trashed = twoway.delete(owner, stored(outlook)[ids[2]])
    assert trashed is not None and trashed.folder.role == "trash"
    assert set(graph.in_folder("deleteditems")) == {trashed.remote_id}
    assert twoway.delete(owner, trashed) is None  # from Deleted Items: gone for good
    assert graph.in_folder("deleteditems") == {}
    # The next sync finds everything where crmail already put it.
    report = sync(outlook)
    assert report.fetched == 0 and report.removed == 0
    assert_matches(graph, outlook)


def test_a_message_moved_away_meanwhile_is_refused_in_words(graph, outlook):
    mid = graph.deliver(mail(1))
    sync(outlook)
    graph.move(mid, "archive")
    with pytest.raises(twoway.Refused, match="no longer there"):
        twoway.set_flagged(outlook.owner, stored(outlook)[mid], True)
    assert not stored(outlook)[mid].flagged


def test_sending_goes_through_sendmail_and_outlook_files_the_copy(graph, outlook):
    outlook.store_sent_on_server = True
    outlook.save()
    sent = send_message(
        outlook.owner,
        Draft(
            sender=graph.address,
            to=["client@example.com"],
            bcc=["boss@contoso.test"],
            subject="Your offer",
            text="Here it is.",
        ),
    )
    [raw] = graph.sent
    assert b"Subject: Your offer" in raw and b"Bcc: boss@contoso.test" in raw
    [copy] = graph.in_folder("sentitems").values()
    assert copy.is_read
    assert sent_copy_outcome(SentMessage.objects.get(pk=sent.pk)) == (
        False,
        "Microsoft Graph files sent mail in the Sent folder itself: crmail added no second copy.",
    )
    # The copy Outlook filed is synced like other mail: the same Message-ID, and the
    # blind copy's address only in the owner's own copy, never in the one crmail shares.
    sync(outlook)
    [filed] = Location.objects.filter(folder__role="sent").select_related("message")
    shared = Message.objects.get(pk=sent.message_id)
    assert filed.message.message_id == shared.message_id
    assert b"boss@contoso.test" not in raw_bytes(shared)


# -- messages past Graph's 4 MB request limit ------------------------------------------------

MB = 1024 * 1024


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that do not compress, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def offer(graph: GraphState, *attachments: tuple[str, str, bytes]) -> Draft:
    """A reply in a thread, to a client with a colleague in Cc and the boss in Bcc."""
    return Draft(
        sender=graph.address,
        to=["client@example.com"],
        cc=["colleague@contoso.test"],
        bcc=["boss@contoso.test"],
        subject="Re: The plans",
        text="Here they are.",
        in_reply_to="offer-1@example.com",
        references=["start@example.com", "offer-1@example.com"],
        attachments=list(attachments),
    )


def received(raw: bytes) -> tuple[EmailMessage, dict[str, bytes]]:
    """A sent message as a recipient's mail program reads it, and its attachments by name."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    files = {str(p.get_filename()): p.get_payload(decode=True) for p in msg.iter_attachments()}
    return msg, files


def calls(graph: GraphState, method: str, ending: str = "") -> list[str]:
    """The paths (with their queries) of the requests ``graph`` took with ``method``."""
    return [p for m, p in graph.requests if m == method and urlsplit(p).path.endswith(ending)]


def test_a_10_mb_attachment_arrives_whole_threaded_and_to_every_recipient(graph, outlook):
    plans = blob(10 * MB)
    sent = send_message(outlook.owner, offer(graph, ("plans.pdf", "application/pdf", plans)))
    [raw] = graph.sent
    msg, files = received(raw)
    assert files == {"plans.pdf": plans}
    assert msg.get_body(("plain",)).get_content().strip() == "Here they are."
    assert msg["Subject"] == "Re: The plans"
    assert msg["In-Reply-To"] == "<offer-1@example.com>"
    assert msg["References"].split() == ["<start@example.com>", "<offer-1@example.com>"]
    shared = Message.objects.get(pk=sent.message_id)
    assert msg["Message-ID"] == f"<{shared.message_id}>"
    # Outlook sent it to To, Cc and Bcc and filed it in Sent Items; no draft is left.
    [copy] = graph.in_folder("sentitems").values()
    seen = copy.resource(graph.base_url, None)
    assert [r["emailAddress"]["address"] for r in seen["toRecipients"]] == ["client@example.com"]
    assert [r["emailAddress"]["address"] for r in seen["ccRecipients"]] == [
        "colleague@contoso.test"
    ]
    assert [r["emailAddress"]["address"] for r in seen["bccRecipients"]] == ["boss@contoso.test"]
    assert not seen["isDraft"] and seen["hasAttachments"] and copy.raw == raw
    assert graph.in_folder("drafts") == {}
    # A draft, the file through an upload session in ranges Outlook takes, then send.
    assert calls(graph, "POST", "/sendMail") == []
    assert len(calls(graph, "POST", "/me/messages")) == 1
    assert len(calls(graph, "POST", "/attachments/createUploadSession")) == 1
    assert len(calls(graph, "PUT")) == 3  # 3.75 MB a range
    assert len(calls(graph, "POST", "/send")) == 1
    # crmail keeps the message as it was written, the blind copy out of it.
    assert b"boss@contoso.test" not in raw_bytes(shared)
    assert [(a.filename, a.size) for a in shared.attachments.all()] == [("plans.pdf", 10 * MB)]


def test_attachments_under_3_mb_go_in_one_request_larger_ones_through_an_upload_session(
    graph, outlook
):
    large, medium, small = blob(5 * MB, 1), blob(2 * MB, 2), blob(MB + MB // 2, 3)
    send_message(
        outlook.owner,
        offer(
            graph,
            ("large.zip", "application/zip", large),
            ("medium.pdf", "application/pdf", medium),
            ("small.png", "image/png", small),
        ),
    )
    [raw] = graph.sent
    assert received(raw)[1] == {"large.zip": large, "medium.pdf": medium, "small.png": small}
    # The draft's MIME keeps what fits (1.5 MB); 2 MB in one request, 5 MB in ranges.
    assert len(calls(graph, "POST", "/attachments")) == 1
    assert len(calls(graph, "POST", "/attachments/createUploadSession")) == 1
    assert len(calls(graph, "PUT")) == 2


@pytest.mark.parametrize(
    "status, retry_after, why",
    [
        (500, None, "Microsoft Graph answered HTTP 500 (generalException)"),
        (404, None, "Microsoft Graph no longer had the upload session (it lasts a limited time)"),
        (429, 120, "Microsoft Graph asked crmail to slow down (too many requests) for 2 minutes"),
    ],
)
def test_a_failed_upload_deletes_the_draft_and_sends_nothing(
    graph, outlook, status, retry_after, why
):
    graph.fail(status, retry_after=retry_after, path="/AttachmentSessions(", after=1)
    with pytest.raises(DriverError) as failed:
        send_message(outlook.owner, offer(graph, ("plans.pdf", "application/pdf", blob(10 * MB))))
    assert str(failed.value) == (
        f"The message was not sent (it stopped at the attachment plans.pdf): {why}. "
        "The unfinished draft was deleted from Outlook."
    )
    assert graph.sent == [] and graph.in_folder("sentitems") == {}
    assert graph.in_folder("drafts") == {} and len(calls(graph, "DELETE")) == 1
    assert not SentMessage.objects.exists()


def test_a_refused_send_deletes_the_draft_with_its_attachments(graph, outlook):
    graph.fail(503, retry_after=None, path="/send")
    with pytest.raises(DriverError) as failed:
        send_message(outlook.owner, offer(graph, ("plans.pdf", "application/pdf", blob(10 * MB))))
    assert str(failed.value) == (
        "The message was not sent: Microsoft Graph answered HTTP 503 (serviceNotAvailable). "
        "The unfinished draft was deleted from Outlook."
    )
    assert graph.sent == [] and graph.in_folder("drafts") == {}
    assert graph.in_folder("sentitems") == {}


def test_a_throttled_range_is_sent_again_after_the_wait_graph_asks(graph, outlook):
    graph.fail(429, retry_after=1, path="/AttachmentSessions(", after=1)
    plans = blob(10 * MB)
    started = time.monotonic()
    send_message(outlook.owner, offer(graph, ("plans.pdf", "application/pdf", plans)))
    assert time.monotonic() - started >= 1
    [raw] = graph.sent
    assert received(raw)[1] == {"plans.pdf": plans}
    assert len(calls(graph, "PUT")) == 4  # the second of three ranges twice


def test_a_message_under_4_mb_is_still_one_sendmail_request(graph, outlook):
    brochure = blob(2 * MB)
    send_message(outlook.owner, offer(graph, ("brochure.pdf", "application/pdf", brochure)))
    assert [(m, p) for m, p in graph.requests if m != "GET"] == [("POST", "/v1.0/me/sendMail")]
    assert received(graph.sent[0])[1] == {"brochure.pdf": brochure}


def test_a_text_too_large_to_send_without_its_attachments_is_refused_in_words(graph, outlook):
    long_text = "A line of a very long message.\n" * 120_000  # 3.7 MB
    with pytest.raises(
        DriverError, match="about 3 MB of a message besides its attachments: shorten its text"
    ) as failed:
        send_message(outlook.owner, Draft(graph.address, ["client@example.com"], "Hi", long_text))
    assert failed.value.kind == "too_large"
    assert [m for m, _ in graph.requests if m != "GET"] == []


def test_a_live_query_finds_mail_from_and_to_the_addresses(graph, outlook):
    graph.deliver(mail(1, sender="ann@example.com"), received=at(1))
    graph.deliver(mail(2, sender="bob@example.com"), received=at(2))
    graph.deliver(
        mail(3, sender=graph.address, to="Ann <ann@example.com>"), "sentitems", received=at(3)
    )
    for n in range(4, 16):
        graph.deliver(mail(n, sender="ann@example.com"), received=at(n))
    driver = open_driver(outlook)
    try:
        assert isinstance(driver, QueriesLive)
        first = driver.query(["ann@example.com", 'bad" OR from:x'], limit=10)
        assert len(first.messages) == 10 and first.next_page
        assert first.messages[0].subject == "Message 15"
        assert first.messages[0].sender == "Client 15 <ann@example.com>"
        rest = driver.query(["ann@example.com"], page=first.next_page, limit=10)
        assert [m.subject for m in rest.messages][-2:] == ["Message 3", "Message 1"]
        assert rest.next_page is None
    finally:
        driver.close()


# -- the stand-in is as strict as Graph -------------------------------------------------------


def call(graph: GraphState, method: str, path: str, **kw):
    token = kw.pop("token", None) or next(iter(graph.tokens))
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return requests.request(method, graph.base_url + path, headers=headers, **kw)


def test_the_stand_in_refuses_what_graph_refuses(graph):
    graph.add_token()
    bad = call(graph, "GET", "/me/mailFolders/inbox/messages/delta?$frobnicate=1")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    assert call(graph, "GET", "/me/mailFolders/nope").json()["error"]["code"] == "ErrorItemNotFound"
    assert call(graph, "PUT", "/me/messages").status_code == 405
    assert call(graph, "GET", "/me/contacts").status_code == 400
    anonymous = requests.get(graph.base_url + "/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    select = call(graph, "GET", "/me/mailFolders/inbox/messages/delta?$select=sizeInBytes")
    assert select.status_code == 400
    graph.fail(429, retry_after=7)
    throttled = call(graph, "GET", "/me")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    search = call(graph, "GET", "/me/messages?$search=participants:a@b.c")
    assert search.status_code == 400  # KQL must be quoted


def test_a_void_delta_token_answers_410_gone_with_the_initial_request(graph):
    graph.add_token()
    graph.deliver(mail(1))
    first = call(graph, "GET", "/me/mailFolders/inbox/messages/delta").json()
    link = first["@odata.deltaLink"]
    graph.void_delta_tokens()
    gone = requests.get(link, headers={"Authorization": f"Bearer {next(iter(graph.tokens))}"})
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"
    assert gone.headers["Location"].endswith("/messages/delta?$deltatoken=")


def test_the_stand_in_takes_uploads_as_outlook_documents_them(graph):
    graph.add_token()
    mime = {"Content-Type": "text/plain"}
    draft = call(graph, "POST", "/me/messages", data=base64.b64encode(mail(1)), headers=mime)
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    path = f"/me/messages/{draft.json()['id']}/attachments/createUploadSession"
    item = {"attachmentType": "file", "name": "plans.pdf", "size": 1_000_000}
    small = call(graph, "POST", path, json={"AttachmentItem": item})
    assert small.json()["error"]["code"] == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    data = blob(10 * 320 * 1024 + 5)
    session = call(graph, "POST", path, json={"AttachmentItem": {**item, "size": len(data)}})
    assert session.status_code == 201 and session.json()["nextExpectedRanges"] == ["0-"]
    url = session.json()["uploadUrl"]
    assert not url.startswith(graph.base_url)  # Outlook's host, not Graph's

    def put(start: int, end: int, **headers: str) -> requests.Response:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"bytes {start}-{end - 1}/{len(data)}",
            **headers,
        }
        return requests.put(url, data=data[start:end], headers=headers)

    token = next(iter(graph.tokens))
    assert put(0, 9 * 320 * 1024, Authorization=f"Bearer {token}").status_code == 401
    assert put(320 * 1024, 9 * 320 * 1024).status_code == 416  # not where the upload is
    assert put(0, 100_000).status_code == 400  # not a multiple of 320 KiB
    first = put(0, 9 * 320 * 1024)
    assert first.status_code == 200 and first.json()["nextExpectedRanges"] == ["2949120"]
    last = put(9 * 320 * 1024, len(data))
    assert last.status_code == 201 and "/Attachments('" in last.headers["Location"]
    assert put(0, 320 * 1024).status_code == 404  # the session ended with the file
    again = call(graph, "POST", path, json={"AttachmentItem": {**item, "size": len(data)}})
    graph.expire_uploads()
    url = again.json()["uploadUrl"]
    assert put(0, 320 * 1024).status_code == 404
    sent = call(graph, "POST", f"/me/messages/{draft.json()['id']}/send")
    assert sent.status_code == 202
    assert received(graph.sent[0])[1] == {"plans.pdf": data}
