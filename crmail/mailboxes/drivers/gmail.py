"""Gmail through the Gmail API (v1), with google-api-python-client.

The client is built from the discovery document the package ships (no network to build
it), its root URL set to ``gmail_api_url()`` so that the methods, media uploads and
batches (``POST {root}/batch``) all go to the same place, over an ``httplib2`` session that
carries the mailbox's OAuth access token.

Folders are labels: the system labels INBOX, SENT, DRAFT, TRASH and SPAM with their roles,
and the user's own labels; a message carrying several labels is in several folders, as in
Gmail's IMAP, and mail in Trash or Spam is only in those. Each folder's cursor is a
``historyId``: the first listing is ``messages.list`` on the label, later changes come from
``history.list`` (one scan shared by the folders asking from the same id). Gmail's message
ids never change, so when the history has expired (404) the folder is listed again and
compared, without fetching what crmail holds. Read and flagged are the UNREAD and STARRED
labels; moving changes labels; deleting puts mail in the Trash.

Quota errors (429, and 403 ``rateLimitExceeded`` / ``userRateLimitExceeded``) wait out a
short Retry-After in place; a longer one raises ``Throttled`` with ``retry_after``.
See docs/decisions/040-gmail-api.md.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from django.conf import settings

from crmail.mailboxes.drivers.base import (
    AppliesLabels,
    AuthFailed,
    ConnectFailed,
    DeletesFolders,
    Driver,
    DriverError,
    FolderDelta,
    LiveMessage,
    LivePage,
    MovesMessages,
    QueriesLive,
    ReadsHeaders,
    ReadsSenders,
    RemoteFolder,
    RemoteMessage,
    Sends,
    SetsFlags,
    Throttled,
)

# googleapiclient and httplib2 take a tenth of a second to import: only a Gmail mailbox
# pays for them (every crmail command imports this module through ``connect``).
if TYPE_CHECKING:
    from googleapiclient.discovery import Resource
    from googleapiclient.errors import HttpError
    from googleapiclient.http import BatchHttpRequest, HttpRequest
from crmail.mailboxes.drivers.imap_protocol import message_id_from_header

DEFAULT_API_URL = "https://gmail.googleapis.com"
# System labels crmail keeps as folders, with their role and the name a user knows.
SYSTEM_FOLDERS = {
    "INBOX": ("inbox", "Inbox"),
    "SENT": ("sent", "Sent"),
    "DRAFT": ("drafts", "Drafts"),
    "SPAM": ("junk", "Spam"),
    "TRASH": ("trash", "Trash"),
}
QUOTA_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"}
)
RAW_BATCH = 25  # messages fetched whole per batch (each up to ~35 MB as JSON)
METADATA_BATCH = 100  # Gmail's limit of calls in one batch
PAGE = 500  # the most messages.list and history.list give at once
HEADER_NAMES = ("From", "To", "Cc", "Subject", "Date", "Message-ID")
_ADDRESS = re.compile(r"[^\s@(){}\"'<>:;,]+@[^\s@(){}\"'<>:;,]+")


def gmail_api_url() -> str:
    """Where the Gmail API answers (``CRMAIL_GMAIL_API_URL``; Google's by default)."""
    return str(getattr(settings, "CRMAIL_GMAIL_API_URL", "") or DEFAULT_API_URL).rstrip("/")


@cache
def _discovery() -> str:
    return (
        resources.files("googleapiclient")
        .joinpath("discovery_cache/documents/gmail.v1.json")
        .read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class GmailConfig:
    email: str
    token: str
    api_url: str = ""  # empty: gmail_api_url()
    timeout: float = 60
    # A Retry-After up to this many seconds is waited out in place; longer ones stop the
    # work with Throttled (the sync resumes later).
    max_wait: float = 30
    # How many times a call that Gmail answered with a server error (5xx) is made again,
    # after 1, 2, 4 … seconds.
    server_retries: int = 3


@cache
def _token_http() -> type:
    """httplib2's session class, sending the access token with every request."""
    import httplib2

    class TokenHttp(httplib2.Http):  # type: ignore[misc]
        """An httplib2 session that sends the access token with every request."""

        def __init__(self, token: str, timeout: float) -> None:
            super().__init__(timeout=timeout)
            self.token = token

        def request(
            self,
            uri: str,
            method: str = "GET",
            body: Any = None,
            headers: dict[str, str] | None = None,
            redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
            connection_type: Any = None,
        ) -> tuple[httplib2.Response, bytes]:
            headers = {**(headers or {}), "authorization": f"Bearer {self.token}"}
            return super().request(uri, method, body, headers, redirections, connection_type)

    return TokenHttp


class _Retry(Exception):
    """A call to make again after ``wait`` seconds (quota, a renewed token, a 5xx)."""

    def __init__(self, wait: float) -> None:
        self.wait = wait


def _in_folder(labels: Iterable[str], folder: str) -> bool:
    """Gmail's view of a label: mail in Trash or Spam shows only there."""
    labels = set(labels)
    if folder not in labels:
        return False
    return folder in ("TRASH", "SPAM") or not labels & {"TRASH", "SPAM"}


def _flags(labels: Iterable[str]) -> frozenset[str]:
    labels = set(labels)
    flags = set()
    if "UNREAD" not in labels:
        flags.add("seen")
    if "STARRED" in labels:
        flags.add("flagged")
    if "DRAFT" in labels:
        flags.add("draft")
    return frozenset(flags)


def _retry_after(error: HttpError) -> float | None:
    value = error.resp.get("retry-after") if error.resp is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    parsed = email.utils.parsedate_to_datetime(value)
    if parsed is None:
        return None
    return max((parsed - datetime.now(UTC)).total_seconds(), 0.0)


def _reason(error: HttpError) -> tuple[str, str]:
    """(reason, message) from Google's error body."""
    try:
        body = json.loads(error.content or b"{}")["error"]
    except (ValueError, KeyError, TypeError):
        return "", ""
    errors = body.get("errors") or [{}]
    return str(errors[0].get("reason", "")), str(body.get("message", ""))


def _collector(
    results: dict[str, Any], errors: dict[str, HttpError]
) -> Callable[[str, Any, Exception | None], None]:
    """A batch's callback: answers into ``results``, HTTP errors into ``errors``."""

    from googleapiclient.errors import HttpError

    def done(key: str, response: Any, exception: Exception | None) -> None:
        if exception is None:
            results[key] = response
        elif isinstance(exception, HttpError):
            errors[key] = exception
        else:
            raise exception

    return done


def _words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(int(seconds), 1)} seconds"
    if seconds < 3600:
        return f"{round(seconds / 60)} minutes"
    hours = round(seconds / 3600)
    return "1 hour" if hours == 1 else f"{hours} hours"


class GmailDriver(
    Driver,
    ReadsHeaders,
    ReadsSenders,
    SetsFlags,
    MovesMessages,
    AppliesLabels,
    DeletesFolders,
    QueriesLive,
    Sends,
):
    """One mailbox's Gmail API session."""

    def __init__(
        self,
        config: GmailConfig,
        *,
        renew_token: Callable[[], str] | None = None,
        on_close: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._renew_token = renew_token
        self._on_close = on_close
        self._sleep = sleep
        from googleapiclient.discovery import build_from_document

        self._http = _token_http()(config.token, config.timeout)
        document = json.loads(_discovery())
        document["rootUrl"] = (config.api_url or gmail_api_url()) + "/"
        self.service: Resource = build_from_document(document, http=self._http)
        self._users = self.service.users()
        self.history_id: str | None = None  # the mailbox's, when connected
        self._history: tuple[str, list[dict[str, Any]], str] | None = None
        self._labels: list[dict[str, Any]] | None = None

    # -- session ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Ask for the profile: the token works, and the history id to list from."""
        profile = self._call(self._users.getProfile(userId="me"))
        self.history_id = str(profile["historyId"])

    def close(self) -> None:
        for conn in list(self._http.connections.values()):
            with contextlib.suppress(OSError):
                conn.close()
        self._http.connections.clear()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    # -- calls -----------------------------------------------------------------------------

    def _call(self, request: HttpRequest | BatchHttpRequest, *, missing: Any = ...) -> Any:
        """Execute one call (or a batch); ``missing`` is answered for a 404 when given."""
        import httplib2
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        for attempt in range(8):
            try:
                if isinstance(request, BatchHttpRequest):
                    return request.execute()
                return request.execute(num_retries=0)
            except HttpError as exc:
                if exc.resp.status == 404 and missing is not ...:
                    return missing
                self._wait(self._classify(exc, attempt))
            except (httplib2.HttpLib2Error, OSError) as exc:
                if attempt >= 2:
                    raise ConnectFailed(f"Gmail could not be reached: {exc}") from exc
                self._wait(_Retry(2.0**attempt))
        raise DriverError("Gmail kept refusing the request; crmail tries again later.")

    def _wait(self, retry: _Retry) -> None:
        self._sleep(retry.wait)

    def _classify(self, exc: HttpError, attempt: int) -> _Retry:
        """A retry to wait for, or the error in words."""
        status = exc.resp.status
        reason, message = _reason(exc)
        if status == 429 or (status == 403 and reason in QUOTA_REASONS):
            wait = _retry_after(exc)
            if wait is None:
                wait = min(2.0**attempt + random.random(), self.config.max_wait)
            if wait <= self.config.max_wait and attempt < 5:
                return _Retry(wait)
            why = (
                "Gmail's daily limit for this account is reached"
                if reason in ("dailyLimitExceeded", "quotaExceeded")
                else "Gmail asks crmail to slow down (too many requests)"
            )
            raise Throttled(f"{why}; crmail carries on in about {_words(wait)}.", retry_after=wait)
        if status == 401:
            if self._renew_token is not None and attempt == 0:
                self._http.token = self._renew_token()
                return _Retry(0)
            raise AuthFailed(
                "Gmail refused crmail's access: sign in with Google again.", kind="oauth_revoked"
            )
        if status == 403:
            raise AuthFailed(f"Gmail refused the request: {message or reason}", kind="auth")
        if status >= 500 and attempt < self.config.server_retries:
            return _Retry(2.0**attempt)
        raise DriverError(f"Gmail answered {status}: {message or reason or 'an error'}", kind="api")

    def _batch(self, calls: list[tuple[str, HttpRequest]], *, size: int) -> dict[str, Any]:
        """Run calls in batches of ``size``: {key: result}; keys whose call answered 404
        are left out; a throttled part is asked again after its wait."""
        results: dict[str, Any] = {}
        todo = list(calls)
        attempt = 0
        while todo:
            retry: list[tuple[str, HttpRequest]] = []
            waits: list[float] = []
            for start in range(0, len(todo), size):
                chunk = dict(todo[start : start + size])
                errors: dict[str, HttpError] = {}
                done = _collector(results, errors)
                batch = self.service.new_batch_http_request(callback=done)
                for key, request in chunk.items():
                    batch.add(request, request_id=key)
                self._call(batch)
                for key, exc in errors.items():
                    if exc.resp.status == 404:
                        continue
                    waits.append(self._classify(exc, attempt).wait)
                    retry.append((key, chunk[key]))
            if retry:
                self._wait(_Retry(max(waits)))
                attempt += 1
            todo = retry
        return results

    # -- folders ---------------------------------------------------------------------------

    def _all_labels(self) -> list[dict[str, Any]]:
        if self._labels is None:
            self._labels = self._call(self._users.labels().list(userId="me")).get("labels", [])
        return self._labels

    def list_folders(self) -> list[RemoteFolder]:
        folders = []
        for label in self._all_labels():
            if label["id"] in SYSTEM_FOLDERS:
                role, name = SYSTEM_FOLDERS[label["id"]]
                folders.append(RemoteFolder(label["id"], name, role))
            elif label.get("type") == "user":
                folders.append(RemoteFolder(label["id"], label["name"], None))
        return folders

    def list_labels(self) -> list[RemoteFolder]:
        return [f for f in self.list_folders() if f.remote_id not in SYSTEM_FOLDERS]

    def create_label(self, name: str) -> RemoteFolder:
        body = {"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}
        from googleapiclient.errors import HttpError

        try:
            label = self._users.labels().create(userId="me", body=body).execute(num_retries=0)
        except HttpError as exc:
            if exc.resp.status != 409:
                self._classify(exc, 99)
                raise
            self._labels = None
            found = next((f for f in self.list_labels() if f.name.lower() == name.lower()), None)
            if found is None:
                raise DriverError(f"Gmail has a label that conflicts with {name!r}.") from exc
            return found
        self._labels = None
        return RemoteFolder(label["id"], label["name"], None)

    def change_labels(self, id: str, add: Iterable[str], remove: Iterable[str]) -> None:
        body = {"addLabelIds": list(add), "removeLabelIds": list(remove)}
        self._call(self._users.messages().modify(userId="me", id=id, body=body))

    def delete_folder(self, folder: RemoteFolder) -> None:
        """``labels.delete``: the label goes, and with it from every message that carried
        it; a label already gone (404) is taken as deleted."""
        self._call(self._users.labels().delete(userId="me", id=folder.remote_id), missing=None)
        self._labels = None

    # -- changes ---------------------------------------------------------------------------

    def _list_ids(self, label: str, query: str = "") -> list[str]:
        """Every message id in ``label`` (and matching ``query``), newest first."""
        ids: list[str] = []
        page: str | None = None
        while True:
            args: dict[str, Any] = {"userId": "me", "labelIds": [label], "maxResults": PAGE}
            if label in ("TRASH", "SPAM"):
                args["includeSpamTrash"] = True
            if query:
                args["q"] = query
            if page:
                args["pageToken"] = page
            answer = self._call(self._users.messages().list(**args))
            ids.extend(m["id"] for m in answer.get("messages", []))
            page = answer.get("nextPageToken")
            if not page:
                return ids

    def _history_since(self, start: str) -> tuple[list[dict[str, Any]], str] | None:
        """History records after ``start`` and the newest history id; None when Gmail no
        longer has them (404)."""
        if self._history is not None and self._history[0] == start:
            return self._history[1], self._history[2]
        records: list[dict[str, Any]] = []
        page: str | None = None
        latest = start
        while True:
            args: dict[str, Any] = {"userId": "me", "startHistoryId": start, "maxResults": PAGE}
            if page:
                args["pageToken"] = page
            answer = self._call(self._users.history().list(**args), missing=None)
            if answer is None:
                return None
            records.extend(answer.get("history", []))
            latest = str(answer.get("historyId") or latest)
            page = answer.get("nextPageToken")
            if not page:
                break
        self._history = (start, records, latest)
        return records, latest

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta:
        label = folder.remote_id
        start = (cursor or {}).get("historyId")
        if not start:
            return self._first_listing(label)
        found = self._history_since(str(start))
        if found is None:
            return self._listing_again(label)
        records, latest = found
        state: dict[str, frozenset[str] | None] = {}  # id: final labels, None when deleted
        for record in records:
            for key in ("messagesAdded", "labelsAdded", "labelsRemoved"):
                for entry in record.get(key, []):
                    message = entry["message"]
                    state[message["id"]] = frozenset(message.get("labelIds", []))
            for entry in record.get("messagesDeleted", []):
                state[entry["message"]["id"]] = None
        delta = FolderDelta(cursor={"historyId": latest})
        for mid, labels in state.items():
            if labels is not None and _in_folder(labels, label):
                delta.new_ids.append(mid)
                delta.flag_changes[mid] = _flags(labels)
            else:
                delta.removed_ids.append(mid)
        return delta

    def _first_listing(self, label: str) -> FolderDelta:
        if self.history_id is None:
            self.connect()
        ids = self._list_ids(label)
        ids.reverse()
        return FolderDelta(cursor={"historyId": self.history_id}, new_ids=ids, present_ids=ids)

    def _listing_again(self, label: str) -> FolderDelta:
        """The history expired: list the folder and its unread and starred mail again.
        Ids are stable in Gmail, so what crmail holds is matched by id, not fetched."""
        profile = self._call(self._users.getProfile(userId="me"))
        ids = self._list_ids(label)
        ids.reverse()
        unread = set(self._list_ids(label, "is:unread"))
        starred = set(self._list_ids(label, "is:starred"))
        delta = FolderDelta(cursor={"historyId": str(profile["historyId"])}, new_ids=ids)
        delta.present_ids = ids
        for mid in ids:
            flags = set()
            if mid not in unread:
                flags.add("seen")
            if mid in starred:
                flags.add("flagged")
            if label == "DRAFT":
                flags.add("draft")
            delta.flag_changes[mid] = frozenset(flags)
        return delta

    # -- messages --------------------------------------------------------------------------

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]:
        messages = self._users.messages()
        for start in range(0, len(ids), RAW_BATCH * 4):
            chunk = ids[start : start + RAW_BATCH * 4]
            got = self._batch(
                [(i, messages.get(userId="me", id=i, format="raw")) for i in chunk],
                size=RAW_BATCH,
            )
            for mid in chunk:
                m = got.get(mid)
                if m is None:
                    continue  # deleted meanwhile
                raw = base64.urlsafe_b64decode(m["raw"] + "=" * (-len(m["raw"]) % 4))
                yield RemoteMessage(
                    remote_id=mid,
                    flags=_flags(m.get("labelIds", [])),
                    raw=raw,
                    size=len(raw),
                    internal_date=datetime.fromtimestamp(int(m["internalDate"]) / 1000, UTC),
                )

    def _metadata(self, ids: Sequence[str], headers: Sequence[str]) -> dict[str, Any]:
        messages = self._users.messages()
        return self._batch(
            [
                (i, messages.get(userId="me", id=i, format="metadata", metadataHeaders=headers))
                for i in ids
            ],
            size=METADATA_BATCH,
        )

    def fetch_headers(self, folder: RemoteFolder, ids: list[str]) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        for mid, m in self._metadata(ids, ["Message-ID"]).items():
            block = "".join(
                f"{h['name']}: {h['value']}\r\n" for h in m.get("payload", {}).get("headers", [])
            )
            out[mid] = (message_id_from_header(block.encode()), int(m["sizeEstimate"]))
        return out

    def senders(
        self, folder: RemoteFolder, ids: list[str]
    ) -> dict[str, tuple[str, datetime | None]]:
        out: dict[str, tuple[str, datetime | None]] = {}
        for mid, m in self._metadata(ids, ["From"]).items():
            values = [h["value"] for h in m.get("payload", {}).get("headers", [])]
            when = datetime.fromtimestamp(int(m["internalDate"]) / 1000, UTC)
            out[mid] = (values[0] if values else "", when)
        return out

    def set_flags(
        self, folder: RemoteFolder, id: str, add: Iterable[str], remove: Iterable[str]
    ) -> None:
        add, remove = set(add), set(remove)
        plus = ["UNREAD"] if "seen" in remove else []
        minus = ["UNREAD"] if "seen" in add else []
        plus += ["STARRED"] if "flagged" in add else []
        minus += ["STARRED"] if "flagged" in remove else []
        if plus or minus:
            self.change_labels(id, plus, minus)

    def move(self, folder: RemoteFolder, id: str, dest: RemoteFolder) -> str | None:
        messages = self._users.messages()
        if dest.remote_id == "TRASH":
            self._call(messages.trash(userId="me", id=id))
            return id
        if folder.remote_id == "TRASH":
            self._call(messages.untrash(userId="me", id=id))
        remove = [] if folder.remote_id in ("SENT", "DRAFT", "TRASH") else [folder.remote_id]
        if dest.remote_id == "SPAM":
            remove = sorted(set(remove) | {"INBOX"})
        self.change_labels(id, [dest.remote_id], remove)
        return id

    def delete(self, folder: RemoteFolder, id: str) -> str | None:
        messages = self._users.messages()
        if folder.remote_id != "TRASH":
            self._call(messages.trash(userId="me", id=id))
            return id
        try:
            self._call(messages.delete(userId="me", id=id))
        except AuthFailed as exc:
            raise DriverError(
                "Gmail lets crmail put mail in the Trash but not delete it for good (that "
                "needs full access to the mailbox); Gmail empties its Trash after 30 days.",
                kind="unsupported",
            ) from exc
        return None

    # -- live --------------------------------------------------------------------------------

    def query(
        self, addresses: Sequence[str], *, page: str | None = None, limit: int = 50
    ) -> LivePage:
        """Mail from or to any of ``addresses``, newest first: one ``messages.list``, then
        the page's headers in one batch."""
        wanted = list(dict.fromkeys(a.strip().lower() for a in addresses))
        wanted = [a for a in wanted if _ADDRESS.fullmatch(a)]
        if not wanted:
            return LivePage([])
        q = " OR ".join(f"from:{a} OR to:{a} OR cc:{a}" for a in wanted)
        args: dict[str, Any] = {"userId": "me", "q": q, "maxResults": max(1, min(limit, 500))}
        if page:
            args["pageToken"] = page
        answer = self._call(self._users.messages().list(**args))
        ids = [m["id"] for m in answer.get("messages", [])]
        found = self._metadata(ids, ["From", "To", "Cc", "Subject", "Message-ID"]) if ids else {}
        out = []
        for mid in ids:
            m = found.get(mid)
            if m is None:
                continue
            headers: dict[str, list[str]] = {}
            for h in m.get("payload", {}).get("headers", []):
                headers.setdefault(h["name"].lower(), []).append(h["value"])
            recipients = tuple(
                addr
                for _, addr in email.utils.getaddresses(
                    headers.get("to", []) + headers.get("cc", [])
                )
                if addr
            )
            out.append(
                LiveMessage(
                    remote_id=mid,
                    sender=(headers.get("from") or [""])[0],
                    received_at=datetime.fromtimestamp(int(m["internalDate"]) / 1000, UTC),
                    subject=(headers.get("subject") or [""])[0],
                    recipients=recipients,
                    thread_id=m.get("threadId", ""),
                    flags=_flags(m.get("labelIds", [])),
                    message_id=(headers.get("message-id") or [""])[0].strip(),
                )
            )
        return LivePage(out, answer.get("nextPageToken"))

    # -- sending -----------------------------------------------------------------------------

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        """Gmail sends to the addresses in the headers and files the copy in Sent itself:
        recipients the headers do not name go into a Bcc header (Gmail drops it)."""
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        named = {
            addr.lower()
            for _, addr in email.utils.getaddresses(
                [str(v) for k in ("To", "Cc", "Bcc") for v in headers.get_all(k, [])]
            )
        }
        hidden = [r for r in recipients if r.lower() not in named]
        if any("\r" in r or "\n" in r for r in hidden):
            raise ValueError("A recipient address holds a line break.")
        if hidden:
            raw = b"Bcc: " + ", ".join(hidden).encode() + b"\r\n" + raw
        body = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        self._call(self._users.messages().send(userId="me", body=body))
