"""A local stand-in for Microsoft Graph v1.0's mail API, strict where Graph is.

It serves one signed-in user (``/me``) over HTTP on a free loopback port, at
``http://127.0.0.1:<port>/v1.0``, following Microsoft's published documents:

- ``GET /me``; ``GET|POST /me/mailFolders``, ``GET|DELETE /me/mailFolders/{id}`` (an id or a
  well-known name: ``inbox``, ``sentitems``, ``drafts``, ``deleteditems``, ``junkemail``,
  ``archive``, ``outbox``, ``msgfolderroot``), ``GET|POST .../childFolders``;
- ``GET /me/mailFolders/{id}/messages/delta`` (message: delta): ``$select``, ``$top``,
  ``changeType``, ``Prefer: odata.maxpagesize`` (10 by default), ``@odata.nextLink`` with a
  ``$skiptoken`` and ``@odata.deltaLink`` with a ``$deltatoken``; removed messages as
  ``{"id", "@removed": {"reason": "deleted"}}``; a void token answers ``410 Gone`` with a
  ``Location`` header holding the initial request and the error code
  ``syncStateNotFound`` (or ``resyncRequired``) (delta-query-overview, "Synchronization
  reset" and errors, "Code property");
- ``GET|PATCH|DELETE /me/messages/{id}`` (``isRead``, ``flag``, ``categories``),
  ``GET /me/messages/{id}/$value`` (the MIME), ``POST /me/messages/{id}/move``
  (``destinationId``; the message gets a new id, as Exchange gives it);
- ``GET /me/messages?$search="participants:a OR from:b"`` (KQL over from, to, cc,
  participants, recipients), newest first;
- ``POST /me/sendMail`` as JSON (``message``, ``saveToSentItems``) or as MIME
  (``Content-Type: text/plain``, the message in base64), ``202 Accepted``; the copy lands
  in Sent Items;
- a large message, as "Attach large files to Outlook messages" has it: ``POST /me/messages``
  with base64 MIME (``text/plain``) makes a draft in Drafts (``201``, ``isDraft``; bad base64
  ``400 ErrorMimeContentInvalidBase64String``); ``POST /me/messages/{id}/attachments``
  takes a ``#microsoft.graph.fileAttachment`` (``name``, ``contentBytes``, ``contentType``,
  ``isInline``, ``contentId``); ``POST .../attachments/createUploadSession`` takes an
  ``AttachmentItem`` of 3 MB or more (less: ``400
  ErrorAttachmentSizeShouldNotBeLessThanMinimumSize``) and answers ``201`` with
  ``uploadUrl``, ``expirationDateTime`` and ``nextExpectedRanges: ["0-"]``. The upload
  URL is served here, outside ``/v1.0``, as Outlook serves it on its own host:
  pre-authenticated by its ``authtoken``, so a request with an ``Authorization`` header
  is refused (``401``). Each ``PUT`` names its bytes in ``Content-Range: bytes
  {start}-{end}/{total}`` and must go on where the last one ended (else ``416``), with
  the session's total; a range that is not the last must be a multiple of 320 KiB (else
  ``400``: Graph documents that rule for OneDrive's upload sessions, and the stand-in holds
  Outlook's to it too). Answers: ``200``
  with ``nextExpectedRanges: ["{next}"]``, then ``201 Created`` with a ``Location``
  (the attachment) for the last range; an expired or cancelled session (``DELETE`` on
  the URL) answers ``404``. ``POST /me/messages/{id}/send`` (``202``) sends the draft
  with its attachments put back into its MIME, where ``sendMail`` records what it sent,
  and moves it to Sent Items (a new id);
- ``POST /$batch`` (json-batching): at most 20 ``requests``, each with a unique ``id``, a
  ``method`` and a ``url`` relative to the version (``/me/messages/{id}/$value``), run one
  after another and answered in ``responses`` with each one's ``status``, ``headers`` and
  ``body``: JSON as it is, anything else (a message's MIME) as a base64 string, as Graph
  answers it. Each step is throttled or failed on its own (``fail(path=…)``).

Errors carry Graph's body ``{"error": {"code", "message", "innerError"}}``: a missing or
unknown Bearer token ``401 InvalidAuthenticationToken``; an unknown query option or a
repeated one ``400 BadRequest``; an unknown segment ``400 BadRequest`` ("Resource not
found for the segment"); an unknown item ``404 ErrorItemNotFound``; a method the resource
does not take ``405``. Tests add messages, act as another client, void delta tokens,
inject errors (``429`` with ``Retry-After``) and add latency through ``GraphState``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tests.harness.serving import serve_in_thread

WELL_KNOWN = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
}
ROOT = "msgfolderroot"
MESSAGE_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "body",
)
FOLDER_PROPERTIES = (
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "isHidden",
)
FLAG_STATUSES = ("notFlagged", "flagged", "complete")
SEARCH_PROPERTIES = ("from", "to", "cc", "participants", "recipients")
MAX_PAGE = 1000
ENTITY = "/$metadata#users('me')/messages/$entity"
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # Graph's request size limit (sendMail MIME included)
UPLOAD_MIN = 3_000_000  # an upload session's attachment: 3 MB or more
UPLOAD_FRAGMENT = 320 * 1024  # a range that is not the last: a multiple of this
UPLOAD_PREFIX = "/api/v2.0/"  # where Outlook serves upload URLs (another host there)
UPLOAD_PATH = re.compile(
    r"/api/v2\.0/Users\('[^'/]*'\)/Messages\('(?P<message>[^'/]*)'\)"
    r"/AttachmentSessions\('(?P<session>[^'/]*)'\)"
)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
ME_ID = "a3f1c6f0-0000-4000-8000-000000000001"


class GraphError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _new_id(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _recipients(value: str | None) -> list[dict[str, Any]]:
    return [
        {"emailAddress": {"name": name, "address": addr}}
        for name, addr in getaddresses([value or ""])
        if addr
    ]


BATCH_LIMIT = 20  # steps in one JSON batch (json-batching)


def _error_body(exc: GraphError) -> dict[str, Any]:
    return {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "innerError": {
                "date": _iso(datetime.now(UTC)),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


@dataclass
class StoredFolder:
    id: str
    name: str
    parent: str
    well_known: str = ""


@dataclass
class StoredAttachment:
    id: str
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str = ""


@dataclass
class UploadSession:
    """An attachment's upload in progress (attachment: createUploadSession)."""

    id: str
    token: str  # the uploadUrl's authtoken
    message: str
    item: StoredAttachment  # its data: the bytes received so far
    size: int
    expires: datetime


@dataclass
class StoredMessage:
    id: str
    folder: str
    raw: bytes
    received: datetime
    is_read: bool = False
    flag: str = "notFlagged"
    is_draft: bool = False
    categories: list[str] = field(default_factory=list)
    conversation: str = ""
    changed: datetime = field(default_factory=lambda: datetime.now(UTC))
    attachments: list[StoredAttachment] = field(default_factory=list)  # added to a draft

    def headers(self) -> EmailMessage:
        msg = message_from_bytes(
            self.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", policy=policy.default
        )
        assert isinstance(msg, EmailMessage)
        return msg

    def resource(self, base: str, select: list[str] | None) -> dict[str, Any]:
        head = self.headers()
        try:
            sent = parsedate_to_datetime(str(head["Date"])) if head["Date"] else self.received
        except (TypeError, ValueError):
            sent = self.received
        sender = _recipients(str(head["From"] or ""))
        full: dict[str, Any] = {
            "id": self.id,
            "createdDateTime": _iso(self.received),
            "lastModifiedDateTime": _iso(self.changed),
            "changeKey": base64.b64encode(self.changed.isoformat().encode()).decode()[:28],
            "categories": list(self.categories),
            "receivedDateTime": _iso(self.received),
            "sentDateTime": _iso(sent),
            "hasAttachments": bool(self.attachments)
            or b"Content-Disposition: attachment" in self.raw,
            "internetMessageId": str(head["Message-ID"] or ""),
            "subject": str(head["Subject"] or ""),
            "bodyPreview": "",
            "importance": "normal",
            "parentFolderId": self.folder,
            "conversationId": self.conversation,
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": self.is_read,
            "isDraft": self.is_draft,
            "webLink": f"https://outlook.office365.com/owa/?ItemID={quote(self.id)}",
            "inferenceClassification": "focused",
            "sender": sender[0] if sender else None,
            "from": sender[0] if sender else None,
            "toRecipients": _recipients(str(head["To"] or "")),
            "ccRecipients": _recipients(str(head["Cc"] or "")),
            "bccRecipients": _recipients(str(head["Bcc"] or "")),
            "replyTo": _recipients(str(head["Reply-To"] or "")),
            "flag": {"flagStatus": self.flag},
            "body": {"contentType": "text", "content": ""},
        }
        out = {"@odata.etag": f'W/"{full["changeKey"]}"'}
        if select is None:
            out.update(full)
        else:
            out.update({k: full[k] for k in ["id", *select]})
        return out

    def addresses(self, prop: str) -> set[str]:
        head = self.headers()
        names = {
            "from": ["From"],
            "to": ["To"],
            "cc": ["Cc"],
            "recipients": ["To", "Cc", "Bcc"],
            "participants": ["From", "To", "Cc", "Bcc"],
        }[prop]
        return {
            addr.lower()
            for _, addr in getaddresses([str(head[n]) for n in names if head[n]])
            if addr
        }


@dataclass
class Round:
    """One round of delta calls in progress (behind a ``$skiptoken``) or done (behind a
    ``$deltatoken``): the folder, the change sequence it covers, the options it encodes."""

    folder: str
    seq: int
    select: list[str] | None
    change_type: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    initial_url: str = ""


@dataclass
class Fault:
    status: int
    code: str
    message: str
    times: int
    retry_after: int | None = None
    path: str = ""  # only requests whose path contains it
    after: int = 0  # that many such requests pass first


class GraphState:
    """The mailbox the stand-in serves, and what tests do to it as another client would."""

    def __init__(self, address: str = "alice@contoso.test") -> None:
        self.lock = threading.RLock()
        self.address = address
        self.tokens: set[str] = set()
        self.latency = 0.0
        self.folders: dict[str, StoredFolder] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.changes: list[tuple[int, str, str]] = []  # (seq, folder id, message id)
        self.seq = 0
        self.rounds: dict[str, Round] = {}
        self.void_tokens: dict[str, str] = {}  # token -> error code
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.steps: list[tuple[str, str]] = []  # the same, of each step of a JSON batch
        self.sent: list[bytes] = []  # MIME of each message sent
        self.uploads: dict[str, UploadSession] = {}
        self.upload_lifetime = timedelta(minutes=15)
        self.base_url = ""
        root = StoredFolder(_new_id("AQMkADAwATM0MDAAMS"), "Top of Information Store", "", ROOT)
        self.folders[root.id] = root
        for name, display in WELL_KNOWN.items():
            self._add_folder(display, root.id, name)

    # -- what tests do ------------------------------------------------------------------

    def add_token(self, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return token

    def folder_id(self, name: str) -> str:
        """The id of a folder by well-known name ("inbox") or display name."""
        with self.lock:
            for f in self.folders.values():
                if name.lower() in (f.well_known, f.name.lower()):
                    return f.id
        raise KeyError(name)

    def create_folder(self, name: str, parent: str = ROOT) -> str:
        with self.lock:
            return self._add_folder(name, self.folder_id(parent), "").id

    def deliver(
        self,
        raw: bytes,
        folder: str = "inbox",
        *,
        is_read: bool = False,
        flagged: bool = False,
        received: datetime | None = None,
    ) -> str:
        """A message arrives in ``folder`` (a name or an id); its id."""
        with self.lock:
            fid = folder if folder in self.folders else self.folder_id(folder)
            msg = StoredMessage(
                _new_id("AAMkAGI2TG93AAA"),
                fid,
                raw,
                received or datetime.now(UTC),
                is_read=is_read,
                flag="flagged" if flagged else "notFlagged",
                conversation=_new_id("AAQkAGI2"),
            )
            self.messages[msg.id] = msg
            self._changed(fid, msg.id)
            return msg.id

    def set_read(self, message_id: str, read: bool = True) -> None:
        with self.lock:
            msg = self.messages[message_id]
            msg.is_read = read
            self._touch(msg)

    def set_flag(self, message_id: str, status: str = "flagged") -> None:
        with self.lock:
            msg = self.messages[message_id]
            msg.flag = status
            self._touch(msg)

    def move(self, message_id: str, folder: str) -> str:
        """Move as Outlook does: the message gets a new id in its new folder."""
        with self.lock:
            dest = folder if folder in self.folders else self.folder_id(folder)
            return self._move(self.messages[message_id], dest)

    def remove(self, message_id: str) -> None:
        """Gone for good (deleted from Deleted Items, or by a retention policy)."""
        with self.lock:
            msg = self.messages.pop(message_id)
            self._changed(msg.folder, msg.id)

    def in_folder(self, folder: str) -> dict[str, StoredMessage]:
        with self.lock:
            fid = folder if folder in self.folders else self.folder_id(folder)
            return {m.id: m for m in self.messages.values() if m.folder == fid}

    def void_delta_tokens(self, code: str = "syncStateNotFound") -> None:
        """Every state token issued so far is no longer valid (an expired or reset sync
        state): using one answers 410 Gone with ``code``."""
        with self.lock:
            for token in self.rounds:
                self.void_tokens[token] = code
            self.rounds.clear()

    def fail(
        self,
        status: int = 429,
        *,
        times: int = 1,
        retry_after: int | None = 30,
        code: str = "",
        path: str = "",
        after: int = 0,
    ) -> None:
        """The next ``times`` requests (whose path contains ``path``), once ``after`` of
        them have passed, fail with ``status``; 429 and 503 carry ``Retry-After`` as Graph's
        throttling does."""
        default = {
            429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
            503: ("serviceNotAvailable", "The service is temporarily unavailable."),
            500: ("generalException", "An unspecified error has occurred."),
            404: ("ErrorItemNotFound", "The specified object was not found in the store."),
        }.get(status, ("generalException", "An unspecified error has occurred."))
        with self.lock:
            self.faults.append(
                Fault(status, code or default[0], default[1], times, retry_after, path, after)
            )

    def expire_uploads(self) -> None:
        """Every upload session open now has expired."""
        with self.lock:
            for session in self.uploads.values():
                session.expires = datetime.now(UTC) - timedelta(seconds=1)

    # -- internals ----------------------------------------------------------------------

    def _add_folder(self, name: str, parent: str, well_known: str) -> StoredFolder:
        folder = StoredFolder(_new_id("AQMkADAwATM0MDAAMS"), name, parent, well_known)
        self.folders[folder.id] = folder
        return folder

    def _changed(self, folder: str, message_id: str) -> None:
        self.seq += 1
        self.changes.append((self.seq, folder, message_id))

    def _touch(self, msg: StoredMessage) -> None:
        msg.changed = datetime.now(UTC)
        self._changed(msg.folder, msg.id)

    def _move(self, msg: StoredMessage, dest: str) -> str:
        del self.messages[msg.id]
        self._changed(msg.folder, msg.id)
        old = msg.id
        msg.id, msg.folder = _new_id("AAMkAGI2TG93AAA"), dest
        msg.changed = datetime.now(UTC)
        self.messages[msg.id] = msg
        self._changed(dest, msg.id)
        assert old != msg.id
        return msg.id

    def resolve_folder(self, ref: str) -> StoredFolder:
        if ref in self.folders:
            return self.folders[ref]
        for f in self.folders.values():
            if f.well_known and f.well_known == ref.lower():
                return f
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )

    def message(self, ref: str) -> StoredMessage:
        msg = self.messages.get(ref)
        if msg is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return msg


# -- the HTTP side -------------------------------------------------------------------------


def _options(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query options, refused as Graph refuses them: unknown or given twice."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        known = next((a for a in allowed if a.lower() == key.lower()), None)
        if known is None:
            raise GraphError(400, "BadRequest", f"Unrecognized query argument specified: '{key}'.")
        if known in out:
            raise GraphError(
                400, "BadRequest", f"Query option '{key}' was specified more than once."
            )
        out[known] = value
    return out


def _select(options: dict[str, str], allowed: tuple[str, ...], type_name: str) -> list[str] | None:
    if "$select" not in options:
        return None
    names = [n.strip() for n in options["$select"].split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise GraphError(
                400,
                "RequestBroker--ParseUri",
                f"Could not find a property named '{n}' on type '{type_name}'.",
            )
    return names


def _page_size(options: dict[str, str], prefer: str, default: int = 10) -> int:
    size = default
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize":
            if not value.strip().isdigit():
                raise GraphError(400, "BadRequest", "Invalid value for odata.maxpagesize.")
            size = int(value)
    if "$top" in options:
        if not options["$top"].isdigit() or int(options["$top"]) < 1:
            raise GraphError(400, "BadRequest", f"Invalid $top value '{options['$top']}'.")
        size = (
            min(size, int(options["$top"]))
            if "odata.maxpagesize" in prefer
            else int(options["$top"])
        )
    return max(1, min(size, MAX_PAGE))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK would add 40 ms to every answer, which Graph does not.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    # -- plumbing ------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if state.latency:
            time.sleep(state.latency)
        parts = urlsplit(self.path)
        with state.lock:
            state.requests.append((method, self.path))
        upload = parts.path.startswith(UPLOAD_PREFIX)
        try:
            if upload:
                self._check_no_auth()
            else:
                self._check_auth(state)
            self._inject(state, parts.path)
            if length > MAX_REQUEST_BYTES:
                raise GraphError(413, "RequestEntityTooLarge", "The request is too large.")
            if upload:
                status, payload, headers = self._upload(method, parts.path, parts.query, body)
            elif parts.path == "/v1.0/$batch":
                status, payload, headers = self._batch(method, parts.query, body)
            else:
                status, payload, headers = self._route(method, parts.path, parts.query, body)
        except GraphError as exc:
            self._error(exc)
            return
        self._send(status, payload, headers)

    def _check_auth(self, state: GraphState) -> None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth or scheme.lower() != "bearer" or not token:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        with state.lock:
            known = token in state.tokens
        if not known:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )

    def _check_no_auth(self) -> None:
        """An upload URL carries its own token: a Bearer token sent along is refused."""
        if "Authorization" in self.headers:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "The upload URL is pre-authenticated: do not send an Authorization header.",
            )

    def _inject(self, state: GraphState, path: str) -> None:
        with state.lock:
            fault = next((f for f in state.faults if f.path in path), None)
            if fault is None:
                return
            if fault.after > 0:
                fault.after -= 1
                return
            fault.times -= 1
            if fault.times <= 0:
                state.faults.remove(fault)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise GraphError(fault.status, fault.code, fault.message, headers)

    def _error(self, exc: GraphError) -> None:
        self._send(exc.status, _error_body(exc), exc.headers)

    def _batch(self, method: str, query: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        """``POST /$batch``: the steps one after another, each answered on its own."""
        state = self.server.state
        self._methods(method, "POST")
        _options(query, ())
        steps = self._json(body).get("requests")
        if not isinstance(steps, list) or not steps:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(steps) > BATCH_LIMIT:
            raise GraphError(
                400,
                "BadRequest",
                f"Number of batch request steps exceeds the maximum of {BATCH_LIMIT}.",
            )
        ids = [step.get("id") if isinstance(step, dict) else None for step in steps]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise GraphError(400, "BadRequest", "Batch request steps must have unique ids.")
        responses = []
        for step in steps:
            url, inner_method = step.get("url"), str(step.get("method", "")).upper()
            if not isinstance(url, str) or not url.startswith("/") or "://" in url:
                raise GraphError(400, "BadRequest", "Invalid request URL in batch step.")
            part = urlsplit(url)
            with state.lock:
                state.steps.append((inner_method, "/v1.0" + url))
            inner = json.dumps(step["body"]).encode() if "body" in step else b""
            try:
                self._inject(state, part.path)
                status, payload, headers = self._route(
                    inner_method, "/v1.0" + part.path, part.query, inner
                )
            except GraphError as exc:
                status, payload, headers = exc.status, _error_body(exc), dict(exc.headers)
            headers = dict(headers)
            if isinstance(payload, bytes):
                headers.setdefault("Content-Type", "text/plain")
                payload = base64.b64encode(payload).decode("ascii")
            elif payload is not None:
                headers.setdefault("Content-Type", "application/json")
            answer: dict[str, Any] = {"id": step["id"], "status": status, "headers": headers}
            if payload is not None:
                answer["body"] = payload
            responses.append(answer)
        return 200, {"responses": responses}, {}

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if payload is None:
            data = b""
        elif isinstance(payload, bytes):
            data = payload
            headers.setdefault("Content-Type", "text/plain")
        else:
            data = json.dumps(payload).encode()
            headers.setdefault(
                "Content-Type",
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
            )
        self.send_response(status)
        headers["request-id"] = str(uuid.uuid4())
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, body: bytes) -> dict[str, Any]:
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            raise GraphError(
                415,
                "UnsupportedMediaType",
                "A supported MIME type could not be found that matches the content type of "
                "the response.",
            )
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", "Unable to read JSON request payload.")
        return data

    # -- routes --------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if not path.startswith("/v1.0/"):
            raise GraphError(400, "BadRequest", "Invalid version.")
        # OData's key form, mailFolders('id'), is the same as mailFolders/id.
        keyed = re.sub(r"\('([^'/]*)'\)", r"/\1", unquote(path[len("/v1.0/") :]))
        seg = [s for s in keyed.split("/") if s]
        low = [s.lower() for s in seg]
        if not seg or low[0] != "me":
            raise GraphError(
                400, "BadRequest", f"Resource not found for the segment '{seg[0] if seg else ''}'."
            )
        rest, low_rest = seg[1:], low[1:]
        if not rest:
            self._methods(method, "GET")
            options = _options(query, ("$select",))
            me = {
                "id": ME_ID,
                "displayName": state.address.split("@")[0].title(),
                "mail": state.address,
                "userPrincipalName": state.address,
            }
            select = _select(options, tuple(me), "microsoft.graph.user")
            if select:
                me = {k: me[k] for k in ["id", *select]}
            return 200, {"@odata.context": f"{state.base_url}/$metadata#users/$entity", **me}, {}
        with state.lock:
            if low_rest[0] == "mailfolders":
                return self._folders(method, rest[1:], low_rest[1:], query, body)
            if low_rest[0] == "messages":
                return self._messages(method, rest[1:], low_rest[1:], query, body)
            if low_rest[0] == "sendmail" and len(rest) == 1:
                self._methods(method, "POST")
                _options(query, ())
                return self._send_mail(body)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")

    def _methods(self, method: str, *allowed: str) -> None:
        if method not in allowed:
            raise GraphError(
                405,
                "Request_BadRequest",
                f"The HTTP method '{method}' is not allowed on this resource.",
            )

    def _folder_resource(self, folder: StoredFolder, select: list[str] | None) -> dict[str, Any]:
        state = self.server.state
        children = [f for f in state.folders.values() if f.parent == folder.id]
        inside = [m for m in state.messages.values() if m.folder == folder.id]
        full = {
            "id": folder.id,
            "displayName": folder.name,
            "parentFolderId": folder.parent,
            "childFolderCount": len(children),
            "unreadItemCount": sum(1 for m in inside if not m.is_read),
            "totalItemCount": len(inside),
            "isHidden": False,
        }
        return full if select is None else {k: full[k] for k in ["id", *select]}

    def _folders(
        self, method: str, seg: list[str], low: list[str], query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        root = state.resolve_folder(ROOT)
        if not seg:  # /me/mailFolders: the folders under the root
            return self._folder_list(method, root, query, body)
        folder = state.resolve_folder(seg[0])
        if len(seg) == 1 and method == "DELETE":
            # Outlook keeps a deleted folder, with what it holds, in Deleted Items.
            _options(query, ())
            if folder.well_known or folder.id == root.id:
                raise GraphError(
                    403,
                    "ErrorDeleteDistinguishedFolder",
                    "Distinguished folders cannot be deleted.",
                )
            folder.parent = state.folder_id("deleteditems")
            return 204, None, {}
        if len(seg) == 1:
            self._methods(method, "GET", "DELETE")
            options = _options(query, ("$select",))
            select = _select(options, FOLDER_PROPERTIES, "microsoft.graph.mailFolder")
            return (
                200,
                {
                    "@odata.context": f"{state.base_url}/$metadata#users('me')/mailFolders/$entity",
                    **self._folder_resource(folder, select),
                },
                {},
            )
        if low[1] == "childfolders" and len(seg) == 2:
            return self._folder_list(method, folder, query, body)
        if (
            low[1] == "messages"
            and len(seg) == 3
            and low[2] in ("delta", "microsoft.graph.delta()", "microsoft.graph.delta")
        ):
            self._methods(method, "GET")
            return self._delta(folder, query)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg[-1]}'.")

    def _folder_list(
        self, method: str, parent: StoredFolder, query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        self._methods(method, "GET", "POST")
        if method == "POST":
            _options(query, ())
            data = self._json(body)
            unknown = set(data) - {"displayName", "isHidden"}
            if unknown:
                raise GraphError(
                    400,
                    "RequestBodyRead",
                    f"The property '{sorted(unknown)[0]}' does not exist on type "
                    "'microsoft.graph.mailFolder'.",
                )
            name = data.get("displayName")
            if not isinstance(name, str) or not name.strip():
                raise GraphError(
                    400,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'DisplayName' is empty.",
                )
            if any(
                f.parent == parent.id and f.name.lower() == name.lower()
                for f in state.folders.values()
            ):
                raise GraphError(
                    409, "ErrorFolderExists", "A folder with the specified name already exists."
                )
            folder = state._add_folder(name, parent.id, "")
            return (
                201,
                {
                    "@odata.context": f"{state.base_url}/$metadata#users('me')/mailFolders/$entity",
                    **self._folder_resource(folder, None),
                },
                {},
            )
        options = _options(query, ("$select", "$top", "$skip", "includeHiddenFolders"))
        select = _select(options, FOLDER_PROPERTIES, "microsoft.graph.mailFolder")
        top = _page_size(options, "", 10)
        skip = options.get("$skip", "0")
        if not skip.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid $skip value '{skip}'.")
        children = [f for f in state.folders.values() if f.parent == parent.id]
        page = children[int(skip) : int(skip) + top]
        out: dict[str, Any] = {
            "@odata.context": f"{state.base_url}/$metadata#users('me')/mailFolders",
            "value": [self._folder_resource(f, select) for f in page],
        }
        if int(skip) + top < len(children):
            path = urlsplit(self.path).path
            rest = [(k, v) for k, v in options.items() if k != "$skip"]
            rest.append(("$skip", str(int(skip) + top)))
            out["@odata.nextLink"] = (
                state.base_url.rsplit("/v1.0", 1)[0]
                + path
                + "?"
                + "&".join(f"{k}={quote(v, safe=',')}" for k, v in rest)
            )
        return 200, out, {}

    def _delta(self, folder: StoredFolder, query: str) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        options = _options(
            query,
            (
                "$select",
                "$top",
                "$skiptoken",
                "$deltatoken",
                "changeType",
                "$expand",
                "$filter",
                "$orderby",
            ),
        )
        for unsupported in ("$expand", "$filter", "$orderby"):
            if unsupported in options:
                raise GraphError(
                    501, "NotImplemented", f"The stand-in does not serve {unsupported}."
                )
        prefer = self.headers.get("Prefer", "")
        size = _page_size(options, prefer, 10)
        initial_url = f"{state.base_url}/me/mailFolders/{folder.id}/messages/delta"
        token = options.get("$skiptoken") or options.get("$deltatoken")
        if token is not None:
            if "$select" in options or "changeType" in options:
                raise GraphError(
                    400,
                    "BadRequest",
                    "Query options are encoded in the state token; do not repeat them.",
                )
            if token in state.void_tokens:
                code = state.void_tokens[token]
                raise GraphError(
                    410,
                    code,
                    "The sync state generation is not found. The delta token is expired and "
                    "data must be synchronized again."
                    if code == "syncStateNotFound"
                    else "The delta token is no longer valid, and the app must reset the sync "
                    "state.",
                    {"Location": initial_url + "?$deltatoken="},
                )
            current = state.rounds.get(token)
            if current is None or current.folder != folder.id:
                raise GraphError(
                    400, "BadRequest", "The state token is not valid for this request."
                )
            if "$skiptoken" in options:
                state.rounds.pop(token)
                round_ = current
            else:  # a new round from the state of the last one
                round_ = Round(folder.id, state.seq, current.select, current.change_type)
                round_.pending = self._changes_since(folder.id, current)
        else:
            change_type = options.get("changeType")
            if change_type is not None and change_type not in ("created", "updated", "deleted"):
                raise GraphError(400, "BadRequest", f"Invalid changeType '{change_type}'.")
            select = _select(options, MESSAGE_PROPERTIES, "microsoft.graph.message")
            round_ = Round(folder.id, state.seq, select, change_type)
            present = sorted(
                (m for m in state.messages.values() if m.folder == folder.id),
                key=lambda m: m.received,
            )
            round_.pending = [m.resource(state.base_url, select) for m in present]
        page, round_.pending = round_.pending[:size], round_.pending[size:]
        page = [{"@odata.type": "#microsoft.graph.message", **item} for item in page]
        out: dict[str, Any] = {"@odata.context": f"{state.base_url}/$metadata#Collection(message)"}
        new_token = secrets.token_urlsafe(18)
        state.rounds[new_token] = round_
        if round_.pending:
            out["@odata.nextLink"] = (
                f"{state.base_url}/me/mailFolders('{folder.id}')/messages/delta?$skiptoken={new_token}"
            )
        else:
            out["@odata.deltaLink"] = (
                f"{state.base_url}/me/mailFolders('{folder.id}')/messages/delta?$deltatoken={new_token}"
            )
        out["value"] = page
        return (
            200,
            out,
            {"Preference-Applied": f"odata.maxpagesize={size}"}
            if "odata.maxpagesize" in prefer
            else {},
        )

    def _changes_since(self, folder: str, last: Round) -> list[dict[str, Any]]:
        state = self.server.state
        ids: dict[str, None] = {}
        for seq, fid, mid in state.changes:
            if seq > last.seq and fid == folder:
                ids.pop(mid, None)
                ids[mid] = None
        out: list[dict[str, Any]] = []
        for mid in ids:
            msg = state.messages.get(mid)
            if msg is not None and msg.folder == folder:
                if last.change_type == "deleted":
                    continue
                out.append(msg.resource(state.base_url, last.select))
            elif last.change_type in (None, "deleted"):
                out.append({"id": mid, "@removed": {"reason": "deleted"}})
        return out

    def _messages(
        self, method: str, seg: list[str], low: list[str], query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        if not seg:
            self._methods(method, "GET", "POST")
            if method == "POST":
                _options(query, ())
                return self._create_draft(body)
            return self._search(query)
        if len(seg) == 1 and low[0] in ("delta", "microsoft.graph.delta()"):
            raise GraphError(
                400,
                "BadRequest",
                "Change tracking is supported per folder: /me/mailFolders/{id}/messages/delta.",
            )
        msg = state.message(seg[0])
        if len(seg) == 1:
            self._methods(method, "GET", "PATCH", "DELETE")
            if method == "GET":
                options = _options(query, ("$select",))
                select = _select(options, MESSAGE_PROPERTIES, "microsoft.graph.message")
                return (
                    200,
                    {
                        "@odata.context": state.base_url + ENTITY,
                        **msg.resource(state.base_url, select),
                    },
                    {},
                )
            _options(query, ())
            if method == "DELETE":
                state.remove(msg.id)
                return 204, None, {}
            return self._patch(msg, self._json(body))
        if len(seg) == 2 and low[1] == "$value":
            self._methods(method, "GET")
            _options(query, ())
            return 200, msg.raw, {"Content-Type": "text/plain"}
        if len(seg) == 2 and low[1] == "attachments":
            if method == "GET":
                raise GraphError(501, "NotImplemented", "The stand-in does not list attachments.")
            self._methods(method, "POST")
            _options(query, ())
            return self._add_attachment(msg, self._json(body))
        if (
            len(seg) == 3
            and low[1] == "attachments"
            and low[2] in ("createuploadsession", "microsoft.graph.createuploadsession")
        ):
            self._methods(method, "POST")
            _options(query, ())
            return self._create_upload(msg, self._json(body))
        if len(seg) == 2 and low[1] in ("send", "microsoft.graph.send"):
            self._methods(method, "POST")
            _options(query, ())
            return self._send_draft(msg)
        if len(seg) == 2 and low[1] == "move":
            self._methods(method, "POST")
            _options(query, ())
            data = self._json(body)
            if set(data) != {"destinationId"} or not isinstance(data["destinationId"], str):
                raise GraphError(
                    400,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'DestinationId' is empty or not valid.",
                )
            dest = state.resolve_folder(data["destinationId"])
            state._move(msg, dest.id)
            return (
                201,
                {
                    "@odata.context": f"{state.base_url}/$metadata#users('me')/messages/$entity",
                    **msg.resource(state.base_url, None),
                },
                {},
            )
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg[-1]}'.")

    def _patch(self, msg: StoredMessage, data: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        for key, value in data.items():
            if key not in MESSAGE_PROPERTIES:
                raise GraphError(
                    400,
                    "RequestBodyRead",
                    f"The property '{key}' does not exist on type 'microsoft.graph.message'. "
                    "Make sure to only use property names that are defined by the type or "
                    "mark the type as open type.",
                )
            if key == "isRead":
                if not isinstance(value, bool):
                    raise GraphError(
                        400,
                        "RequestBodyRead",
                        "Cannot convert a primitive value to the expected type 'Edm.Boolean'.",
                    )
                msg.is_read = value
            elif key == "flag":
                status = value.get("flagStatus") if isinstance(value, dict) else None
                if status not in FLAG_STATUSES:
                    raise GraphError(
                        400,
                        "RequestBodyRead",
                        f"Cannot convert the literal '{status}' to the expected type "
                        "'microsoft.graph.followupFlagStatus'.",
                    )
                msg.flag = status
            elif key == "categories":
                if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                    raise GraphError(
                        400,
                        "RequestBodyRead",
                        "Cannot read the value of 'categories' as a collection of strings.",
                    )
                msg.categories = list(value)
            else:
                raise GraphError(
                    400,
                    "ErrorInvalidPropertyUpdateSentMessage",
                    "Update operation is not allowed for this property on a sent message.",
                )
        state._touch(msg)
        return (
            200,
            {
                "@odata.context": f"{state.base_url}/$metadata#users('me')/messages/$entity",
                **msg.resource(state.base_url, None),
            },
            {},
        )

    def _search(self, query: str) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        options = _options(
            query, ("$search", "$select", "$top", "$skiptoken", "$filter", "$skip", "$orderby")
        )
        if "$skiptoken" in options:
            if len(options) != 1:
                raise GraphError(
                    400,
                    "BadRequest",
                    "Query options are encoded in the skip token; do not repeat them.",
                )
            saved = state.rounds.pop(options["$skiptoken"], None)
            if saved is None:
                raise GraphError(400, "BadRequest", "The skip token is not valid.")
            pending, size, select = saved.pending, int(saved.initial_url), saved.select
        else:
            if "$search" not in options:
                raise GraphError(
                    501, "NotImplemented", "The stand-in serves /me/messages with $search only."
                )
            if "$skip" in options or "$orderby" in options or "$filter" in options:
                raise GraphError(
                    400,
                    "ErrorInvalidUrlQuery",
                    "The query parameter '$skip', '$orderby' or '$filter' is not supported "
                    "with '$search'.",
                )
            select = _select(options, MESSAGE_PROPERTIES, "microsoft.graph.message")
            size = _page_size(options, self.headers.get("Prefer", ""), 10)
            terms = self._kql(options["$search"])
            found = [
                m
                for m in state.messages.values()
                if any(value in m.addresses(prop) for prop, value in terms)
            ]
            found.sort(key=lambda m: m.received, reverse=True)
            pending = [m.resource(state.base_url, select) for m in found]
        page, rest = pending[:size], pending[size:]
        out: dict[str, Any] = {
            "@odata.context": f"{state.base_url}/$metadata#users('me')/messages",
            "value": page,
        }
        if rest:
            token = secrets.token_urlsafe(18)
            state.rounds[token] = Round("", 0, select, None, rest, str(size))
            out["@odata.nextLink"] = f"{state.base_url}/me/messages?$skiptoken={token}"
        return 200, out, {}

    @staticmethod
    def _kql(text: str) -> list[tuple[str, str]]:
        """``"participants:a@x OR from:b@y"``: the quoted KQL the messages' $search takes."""
        if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
            raise GraphError(
                400,
                "BadRequest",
                "Syntax error: character '\"' expected: $search must be enclosed in double quotes.",
            )
        terms: list[tuple[str, str]] = []
        for part in text[1:-1].split(" OR "):
            prop, sep, value = part.strip().partition(":")
            if not sep or prop.lower() not in SEARCH_PROPERTIES or not value.strip():
                raise GraphError(
                    400,
                    "BadRequest",
                    f"The stand-in's KQL takes property:value terms joined by OR; got '{part}'.",
                )
            terms.append((prop.lower(), value.strip().lower()))
        return terms

    def _send_mail(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            raw = _mime_body(body)
            save = True
        else:
            data = self._json(body)
            unknown = set(data) - {"message", "saveToSentItems"}
            message = data.get("message")
            if unknown or not isinstance(message, dict):
                raise GraphError(
                    400,
                    "ErrorInvalidParameter",
                    "The value of the parameter 'Message' is empty or not valid.",
                )
            raw = self._mime_of(message)
            save = data.get("saveToSentItems", True) is not False

        def file_copy() -> None:
            if save:
                state.deliver(raw, "sentitems", is_read=True)

        self._hand_over(raw, file_copy)
        return 202, None, {}

    def _hand_over(self, raw: bytes, file_copy: Callable[[], None]) -> None:
        """``raw`` sent (recorded in ``state.sent``) once it names a recipient: its copy
        filed by ``file_copy``, and delivered to the Inbox too when it is to the user."""
        state = self.server.state
        head = message_from_bytes(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", policy=policy.default)
        rcpts = [
            a for _, a in getaddresses([str(head[h]) for h in ("To", "Cc", "Bcc") if head[h]]) if a
        ]
        if not rcpts:
            raise GraphError(
                400,
                "ErrorInvalidRecipients",
                "At least one recipient is not valid., Recipient is missing.",
            )
        state.sent.append(raw)
        file_copy()
        if state.address.lower() in {r.lower() for r in rcpts}:
            state.deliver(_without_bcc(raw), "inbox")

    # -- a large message: a draft, its attachments, then send ---------------------------

    def _create_draft(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        """``POST /me/messages`` with base64 MIME: a draft in Drafts."""
        state = self.server.state
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "text/plain":
            raise GraphError(
                501, "NotImplemented", "The stand-in makes drafts from MIME (text/plain) only."
            )
        mid = state.deliver(_mime_body(body), "drafts", is_read=True)
        msg = state.messages[mid]
        msg.is_draft = True
        return (
            201,
            {"@odata.context": state.base_url + ENTITY, **msg.resource(state.base_url, None)},
            {},
        )

    def _add_attachment(
        self, msg: StoredMessage, data: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        """``POST /me/messages/{id}/attachments``: a fileAttachment."""
        state = self.server.state
        kind = data.get("@odata.type")
        if kind in ("#microsoft.graph.itemAttachment", "#microsoft.graph.referenceAttachment"):
            raise GraphError(501, "NotImplemented", "The stand-in takes file attachments only.")
        if kind != "#microsoft.graph.fileAttachment":
            raise GraphError(
                400, "ErrorInvalidParameter", "The attachment's '@odata.type' is missing."
            )
        fields = _attachment_fields(
            {k: v for k, v in data.items() if k != "@odata.type"},
            ("name", "contentBytes", "contentType", "isInline", "contentId"),
            "microsoft.graph.fileAttachment",
        )
        content = fields.get("contentBytes")
        if not isinstance(content, str):
            raise GraphError(
                400, "ErrorInvalidParameter", "The value of the parameter 'ContentBytes' is empty."
            )
        try:
            payload = base64.b64decode(content, validate=True)
        except ValueError:
            raise GraphError(
                400, "RequestBodyRead", "Cannot read the value of 'contentBytes' as base64."
            ) from None
        attachment = _stored_attachment(fields, payload)
        msg.attachments.append(attachment)
        state._touch(msg)
        return (
            201,
            {
                "@odata.context": f"{state.base_url}/$metadata#users('me')/messages"
                f"('{msg.id}')/attachments/$entity",
                "@odata.type": "#microsoft.graph.fileAttachment",
                **_attachment_resource(attachment),
                "contentBytes": content,
            },
            {},
        )

    def _create_upload(
        self, msg: StoredMessage, data: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        """``POST .../attachments/createUploadSession``: an upload session for a file of 3 MB
        or more, its ``uploadUrl`` served by ``_upload``."""
        state = self.server.state
        item = data.get("AttachmentItem")
        if set(data) != {"AttachmentItem"} or not isinstance(item, dict):
            raise GraphError(
                400,
                "ErrorInvalidParameter",
                "The value of the parameter 'AttachmentItem' is empty or not valid.",
            )
        fields = _attachment_fields(
            item,
            ("attachmentType", "name", "size", "contentType", "isInline", "contentId"),
            "microsoft.graph.attachmentItem",
        )
        if fields.get("attachmentType") in ("item", "reference"):
            raise GraphError(501, "NotImplemented", "The stand-in uploads files only.")
        size = fields.get("size")
        if (
            fields.get("attachmentType") != "file"
            or not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
        ):
            raise GraphError(
                400,
                "ErrorInvalidParameter",
                "The attachment item needs 'attachmentType' file, a 'name' and a 'size'.",
            )
        if size < UPLOAD_MIN:
            raise GraphError(
                400,
                "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                "Attachment size must be greater than the minimum size.",
            )
        session = UploadSession(
            _new_id("AAMkAGI2TG93AAAS"),
            secrets.token_urlsafe(24),
            msg.id,
            _stored_attachment(fields, b""),
            size,
            datetime.now(UTC) + state.upload_lifetime,
        )
        state.uploads[session.id] = session
        return (
            201,
            {
                "@odata.context": f"{state.base_url}/$metadata#microsoft.graph.uploadSession",
                "uploadUrl": self._outlook_url(
                    session, f"AttachmentSessions('{session.id}')?authtoken={session.token}"
                ),
                "expirationDateTime": _iso(session.expires),
                "nextExpectedRanges": ["0-"],
            },
            {},
        )

    def _outlook_url(self, session: UploadSession, tail: str) -> str:
        """An address on "Outlook's host" (the stand-in's, outside ``/v1.0``) under the
        message of ``session``: its upload URL, its attachments."""
        origin = self.server.state.base_url.rsplit("/v1.0", 1)[0]
        return f"{origin}{UPLOAD_PREFIX}Users('{ME_ID}')/Messages('{session.message}')/{tail}"

    def _upload(
        self, method: str, path: str, query: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """A ``PUT`` of a range of an upload session's file (or ``DELETE``: cancel it)."""
        state = self.server.state
        found = UPLOAD_PATH.fullmatch(unquote(path))
        with state.lock:
            session = state.uploads.get(found["session"]) if found else None
            if session is None or found is None or session.message != found["message"]:
                raise GraphError(404, "ErrorItemNotFound", "The upload session was not found.")
            if dict(parse_qsl(query)) != {"authtoken": session.token}:
                raise GraphError(
                    401, "InvalidAuthenticationToken", "The upload URL's token is not valid."
                )
            if datetime.now(UTC) >= session.expires:
                del state.uploads[session.id]
                raise GraphError(404, "ErrorItemNotFound", "The upload session has expired.")
            self._methods(method, "PUT", "DELETE")
            if method == "DELETE":
                del state.uploads[session.id]
                return 204, None, {}
            return self._upload_range(session, body)

    def _upload_range(self, session: UploadSession, body: bytes) -> tuple[int, Any, dict[str, str]]:
        state = self.server.state
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/octet-stream":
            raise GraphError(
                415, "UnsupportedMediaType", "Upload ranges are application/octet-stream."
            )
        match = CONTENT_RANGE.fullmatch((self.headers.get("Content-Range") or "").strip())
        if match is None:
            raise GraphError(
                400, "InvalidContentRange", "Content-Range must be 'bytes {start}-{end}/{total}'."
            )
        start, end, total = (int(n) for n in match.groups())
        received = len(session.item.data)
        if total != session.size or end < start or end >= total or len(body) != end - start + 1:
            raise GraphError(
                400,
                "InvalidContentRange",
                "The range does not match the body or the size of the upload session.",
            )
        if start != received:
            raise GraphError(
                416,
                "RequestedRangeNotSatisfiable",
                f"The upload session expects the range from byte {received}.",
            )
        if end + 1 < total and len(body) % UPLOAD_FRAGMENT:
            raise GraphError(
                400,
                "InvalidContentRange",
                "A range other than the last must be a multiple of 320 KiB (327,680 bytes).",
            )
        session.item.data += body
        if end + 1 < total:
            return (
                200,
                {
                    "@odata.context": self._outlook_url(session, "AttachmentSessions/$entity"),
                    "expirationDateTime": _iso(session.expires),
                    "nextExpectedRanges": [str(end + 1)],
                },
                {},
            )
        del state.uploads[session.id]
        msg = state.message(session.message)
        msg.attachments.append(session.item)
        state._touch(msg)
        location = self._outlook_url(session, f"Attachments('{session.item.id}')")
        return 201, None, {"Location": location}

    def _send_draft(self, msg: StoredMessage) -> tuple[int, Any, dict[str, str]]:
        """``POST /me/messages/{id}/send``: the draft goes out with its attachments and
        moves to Sent Items."""
        state = self.server.state
        if not msg.is_draft:
            raise GraphError(400, "ErrorInvalidOperation", "Only a draft can be sent.")
        raw = _with_attachments(msg.raw, msg.attachments)

        def file_copy() -> None:
            msg.raw, msg.attachments, msg.is_draft, msg.is_read = raw, [], False, True
            state._move(msg, state.folder_id("sentitems"))

        self._hand_over(raw, file_copy)
        return 202, None, {}

    @staticmethod
    def _mime_of(message: dict[str, Any]) -> bytes:
        msg = EmailMessage()
        for header, key in (
            ("To", "toRecipients"),
            ("Cc", "ccRecipients"),
            ("Bcc", "bccRecipients"),
        ):
            people = message.get(key) or []
            addresses = [
                p.get("emailAddress", {}).get("address", "") for p in people if isinstance(p, dict)
            ]
            if any(not a for a in addresses):
                raise GraphError(
                    400, "ErrorInvalidRecipients", "At least one recipient is not valid."
                )
            if addresses:
                msg[header] = ", ".join(addresses)
        msg["Subject"] = str(message.get("subject", ""))
        msg["Message-ID"] = f"<{uuid.uuid4()}@stand-in.outlook.test>"
        content = message.get("body") or {}
        msg.set_content(str(content.get("content", "")))
        return msg.as_bytes(policy=policy.SMTP)


def _without_bcc(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kept: list[bytes] = []
    skipping = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"bcc:")
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + sep + body


def _mime_body(body: bytes) -> bytes:
    """A request's base64 MIME (sendMail, a draft), decoded as Graph reads it."""
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise GraphError(
            400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
        ) from None


def _attachment_fields(
    data: dict[str, Any], known: tuple[str, ...], type_name: str
) -> dict[str, Any]:
    """An attachment's properties, refused as Graph refuses them: unknown ones, a name
    that is not a string, and ``contentType``, ``isInline`` or ``contentId`` of the
    wrong type."""
    for key in data:
        if key not in known:
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{key}' does not exist on type '{type_name}'.",
            )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise GraphError(
            400, "ErrorInvalidParameter", "The value of the parameter 'Name' is empty."
        )
    for key, kind in (("contentType", str), ("isInline", bool), ("contentId", str)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise GraphError(
                400, "RequestBodyRead", f"Cannot read the value of '{key}' on type '{type_name}'."
            )
    return data


def _stored_attachment(fields: dict[str, Any], data: bytes) -> StoredAttachment:
    return StoredAttachment(
        _new_id("AAMkAGI2TG93AAABEgAQ"),
        fields["name"],
        fields.get("contentType") or "application/octet-stream",
        data,
        bool(fields.get("isInline")),
        fields.get("contentId") or "",
    )


def _attachment_resource(attachment: StoredAttachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "lastModifiedDateTime": _iso(datetime.now(UTC)),
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": len(attachment.data),
        "isInline": attachment.is_inline,
        "contentId": attachment.content_id or None,
        "contentLocation": None,
    }


def _with_attachments(raw: bytes, attachments: list[StoredAttachment]) -> bytes:
    """A draft's MIME with the attachments added to it apart put back in, as the
    recipients get it."""
    if not attachments:
        return raw
    msg = message_from_bytes(raw, policy=policy.SMTP)
    assert isinstance(msg, EmailMessage)
    for a in attachments:
        maintype, _, subtype = a.content_type.partition("/")
        msg.add_attachment(
            a.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=a.name,
            disposition="inline" if a.is_inline else "attachment",
            cid=f"<{a.content_id}>" if a.content_id else None,
        )
    return msg.as_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: GraphState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextlib.contextmanager
def serve(state: GraphState | None = None) -> Iterator[GraphState]:
    """Run the stand-in in a thread; ``state.base_url`` is its API base URL."""
    state = state or GraphState()
    server = _Server(state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1.0"
    thread = serve_in_thread(server)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
