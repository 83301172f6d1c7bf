"""A local Gmail API (v1) for tests and benchmarks: a real HTTP server on loopback.

It answers the paths, parameters and shapes of the discovery document that
google-api-python-client ships (``googleapiclient/discovery_cache/documents/gmail.v1.json``)
for what crmail uses: ``users.getProfile``, ``users.labels`` (list, get, create, delete),
``users.messages`` (list, get, modify, trash, untrash, delete, send, insert),
``users.history.list``, and batches (``POST /batch`` or ``/batch/gmail/v1``,
multipart/mixed of ``application/http`` parts). It is strict where Google is: a query
parameter the method does not declare, a bad enum or number, an unknown field in a JSON
body answer 400 in Google's error shape; a path with a method it does not have answers
Google's 404 page; a missing or unknown Bearer token answers 401; ``messages.delete``
wants the full ``https://mail.google.com/`` scope (403 ``insufficientPermissions``).

Tests drive it from the side as another client would (``add_message``, ``modify``,
``trash``, ``delete``), make the history expire (``expire_history``: older
``startHistoryId`` values answer 404), inject failures (``fail``: 429 with Retry-After and
``rateLimitExceeded`` / ``userRateLimitExceeded``, or any status), and add latency per
request (``latency`` seconds, for the benchmark).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.parser import BytesHeaderParser
from email.policy import compat32
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.harness.serving import serve_in_thread

FULL_SCOPE = "https://mail.google.com/"
MODIFY_SCOPE = "https://www.googleapis.com/auth/gmail.modify"
LABELS_SCOPE = "https://www.googleapis.com/auth/gmail.labels"
SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
DEFAULT_SCOPES = frozenset({MODIFY_SCOPE, LABELS_SCOPE})

# Gmail's system labels, as labels.list answers them.
SYSTEM_LABELS = (
    "CHAT",
    "SENT",
    "INBOX",
    "IMPORTANT",
    "TRASH",
    "DRAFT",
    "SPAM",
    "CATEGORY_FORUMS",
    "CATEGORY_UPDATES",
    "CATEGORY_PERSONAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_SOCIAL",
    "STARRED",
    "UNREAD",
)
# Parameters every Google API method accepts (the discovery document's "parameters").
SYSTEM_PARAMETERS = frozenset(
    {
        "$.xgafv",
        "access_token",
        "alt",
        "callback",
        "fields",
        "key",
        "oauth_token",
        "prettyPrint",
        "quotaUser",
        "uploadType",
        "upload_protocol",
    }
)
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
FORMATS = ("minimal", "full", "raw", "metadata")
BATCH_LIMIT = 100  # Gmail's documented maximum calls in one batch
NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1"
    "</title>\n  <p><b>404.</b> <ins>That\u2019s an error.</ins>\n  <p>The requested URL "
    "<code>{path}</code> was not found on this server.  <ins>That\u2019s all we know.</ins>\n"
)


class ApiError(Exception):
    """An answer in Google's JSON error shape."""

    STATUS = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }

    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.domain = code, message, reason, domain
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        detail = {"message": self.message, "domain": self.domain, "reason": self.reason}
        detail.update(self.extra)
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [detail],
                "status": self.STATUS.get(self.code, "UNKNOWN"),
            }
        }


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalidArgument")


def not_found() -> ApiError:
    return ApiError(404, "Requested entity was not found.", "notFound")


def unknown_parameter(name: str) -> ApiError:
    return ApiError(
        400,
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message.",
        "invalid",
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: set[str]
    internal_date: int  # milliseconds since the epoch
    history_id: int
    headers: list[tuple[str, str]]
    addresses: dict[str, str]  # from/to/cc: lowercased header text, for q
    subject: str
    snippet: str

    def resource(
        self, fmt: str = "minimal", metadata_headers: Iterable[str] = ()
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "threadId": self.thread_id}
        if self.labels:
            out["labelIds"] = sorted(self.labels)
        out.update(
            snippet=self.snippet,
            sizeEstimate=len(self.raw),
            historyId=str(self.history_id),
            internalDate=str(self.internal_date),
        )
        if fmt == "raw":
            out["raw"] = _b64url(self.raw)
        elif fmt == "metadata":
            wanted = {h.lower() for h in metadata_headers}
            out["payload"] = {
                "mimeType": self._mime_type(),
                "headers": [
                    {"name": k, "value": v}
                    for k, v in self.headers
                    if not wanted or k.lower() in wanted
                ],
            }
        elif fmt == "full":
            out["payload"] = self._full_payload()
        return out

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "threadId": self.thread_id}

    def with_labels(self) -> dict[str, Any]:
        return {"id": self.id, "threadId": self.thread_id, "labelIds": sorted(self.labels)}

    def _mime_type(self) -> str:
        for k, v in self.headers:
            if k.lower() == "content-type":
                return v.split(";", 1)[0].strip().lower()
        return "text/plain"

    def _full_payload(self) -> dict[str, Any]:
        msg = message_from_bytes(self.raw, policy=compat32)

        def part(p: Any, part_id: str) -> dict[str, Any]:
            node: dict[str, Any] = {
                "partId": part_id,
                "mimeType": p.get_content_type(),
                "filename": p.get_filename() or "",
                "headers": [{"name": k, "value": str(v)} for k, v in p.items()],
            }
            if p.is_multipart():
                node["body"] = {"size": 0}
                node["parts"] = [
                    part(c, f"{part_id}.{i}" if part_id else str(i))
                    for i, c in enumerate(p.get_payload())
                ]
            else:
                data = p.get_payload(decode=True) or b""
                node["body"] = {"size": len(data), "data": _b64url(data)}
            return node

        return part(msg, "")


@dataclass
class Failure:
    status: int
    reason: str
    retry_after: float | None
    times: int
    match: str | None
    message: str


@dataclass
class HistoryRecord:
    id: int
    kind: str  # one of HISTORY_TYPES
    message: dict[str, Any]  # id, threadId, labelIds at the time
    label_ids: list[str] = field(default_factory=list)  # for labelAdded / labelRemoved

    def resource(self) -> dict[str, Any]:
        brief = {"id": self.message["id"], "threadId": self.message["threadId"]}
        out: dict[str, Any] = {"id": str(self.id), "messages": [brief]}
        key = {
            "messageAdded": "messagesAdded",
            "messageDeleted": "messagesDeleted",
            "labelAdded": "labelsAdded",
            "labelRemoved": "labelsRemoved",
        }[self.kind]
        entry: dict[str, Any] = {"message": dict(self.message)}
        if self.kind in ("labelAdded", "labelRemoved"):
            entry["labelIds"] = list(self.label_ids)
        out[key] = [entry]
        return out


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    in_batch: bool


class GmailStandIn:
    """One Gmail account behind a local Gmail API. ``with GmailStandIn() as gmail:``."""

    def __init__(self, email: str = "rep@gmail.test", *, latency: float = 0.0) -> None:
        self.email = email
        self.latency = latency
        self.tokens: dict[str, frozenset[str]] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.user_labels: dict[str, dict[str, Any]] = {}
        self.history: list[HistoryRecord] = []
        self.history_id = 1000
        self.oldest_history_id = 0  # startHistoryId below this answers 404
        self.failures: list[Failure] = []
        self.requests: list[Request] = []
        self.sent: list[bytes] = []
        self._lock = threading.RLock()
        self._order: list[StoredMessage] | None = None  # newest first, rebuilt on demand
        # (from|to|cc|bcc, address): message ids, so from:/to:/cc: queries need no scan
        self._by_address: dict[tuple[str, str], set[str]] = {}
        self._next_id = 0x18C0000000000000
        self._next_label = 1
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- running ------------------------------------------------------------------------

    def start(self) -> GmailStandIn:
        stand_in = self

        class Handler(_Handler):
            gmail = stand_in

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GmailStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests do from the side ----------------------------------------------------------

    def token(self, token: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
        """Accept ``token`` as a Bearer access token with ``scopes``."""
        self.tokens[token] = frozenset(scopes)
        return token

    def add_label(self, name: str) -> str:
        """A user label, as another client creates it; its id."""
        with self._lock:
            return self._create_label({"name": name})["id"]

    def label_id(self, name: str) -> str | None:
        if name in SYSTEM_LABELS:
            return name
        return next((k for k, v in self.user_labels.items() if v["name"] == name), None)

    def add_message(
        self,
        raw: bytes,
        labels: Iterable[str] = ("INBOX", "UNREAD"),
        internal_date: float | None = None,
        thread_id: str | None = None,
    ) -> str:
        """Deliver ``raw`` with ``labels`` (ids) at ``internal_date`` (epoch seconds, else
        the Date header, else now); its id."""
        with self._lock:
            return self._add(raw, set(labels), internal_date, thread_id).id

    def add_messages(self, raws: Iterable[tuple[bytes, Iterable[str], float | None]]) -> list[str]:
        """Many at once (benchmarks): (raw, labels, internal date)."""
        with self._lock:
            return [self._add(raw, set(labels), when, None).id for raw, labels, when in raws]

    def modify(self, id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Change a message's labels as another client would."""
        with self._lock:
            self._modify(self.messages[id], list(add), list(remove))

    def trash(self, id: str) -> None:
        self.modify(id, add=["TRASH"])

    def delete(self, id: str) -> None:
        """Delete for good, as another client would."""
        with self._lock:
            self._delete(self.messages[id])

    def labels_of(self, id: str) -> set[str]:
        return set(self.messages[id].labels)

    def ids_with(self, label: str) -> set[str]:
        return {m.id for m in self.messages.values() if label in m.labels}

    def expire_history(self) -> None:
        """Every history id handed out so far is too old now (history.list answers 404)."""
        with self._lock:
            self.history_id += 1
            self.oldest_history_id = self.history_id
            self.history.clear()

    def fail(
        self,
        status: int = 429,
        reason: str = "rateLimitExceeded",
        *,
        retry_after: float | None = 1,
        times: int = 1,
        match: str | None = None,
        message: str = "",
    ) -> None:
        """The next ``times`` calls (whose ``METHOD /path`` contains ``match``, if given)
        answer ``status`` with ``reason``; 429 and 403 quota errors carry Retry-After."""
        default = {
            "rateLimitExceeded": "Too many concurrent requests for user.",
            "userRateLimitExceeded": "User-rate limit exceeded.",
        }.get(reason, "Backend Error")
        with self._lock:
            self.failures.append(
                Failure(status, reason, retry_after, times, match, message or default)
            )

    def calls(self, pattern: str = "") -> list[Request]:
        """The requests so far whose ``METHOD /path`` contains ``pattern``."""
        return [r for r in self.requests if pattern in f"{r.method} {r.path}"]

    # -- the model ------------------------------------------------------------------------

    def _bump(self) -> int:
        self.history_id += 1
        return self.history_id

    def _record(self, kind: str, m: StoredMessage, label_ids: Iterable[str] = ()) -> None:
        m.history_id = self._bump()
        self.history.append(HistoryRecord(m.history_id, kind, m.with_labels(), list(label_ids)))

    def _add(
        self, raw: bytes, labels: set[str], when: float | None, thread_id: str | None
    ) -> StoredMessage:
        for label in labels:
            if self.label_id(label) != label and label not in self.user_labels:
                raise invalid(f"Invalid label: {label}")
        self._next_id += 1
        mid = f"{self._next_id:016x}"
        headers = [
            (k, str(v).replace("\r\n", " ").replace("\n", " "))
            for k, v in BytesHeaderParser(policy=compat32).parsebytes(raw).items()
        ]
        lower = {k.lower(): v for k, v in reversed(headers)}
        if when is None:
            parsed = email.utils.parsedate_tz(lower.get("date", "")) if "date" in lower else None
            when = email.utils.mktime_tz(parsed) if parsed else time.time()
        body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
        m = StoredMessage(
            id=mid,
            thread_id=thread_id or mid,
            raw=raw,
            labels=labels,
            internal_date=int(when * 1000),
            history_id=0,
            headers=headers,
            addresses={k: lower.get(k, "").lower() for k in ("from", "to", "cc", "bcc")},
            subject=lower.get("subject", ""),
            snippet=" ".join(body[:400].decode("utf-8", "replace").split())[:200],
        )
        self.messages[mid] = m
        self._order = None
        for field_name, text in m.addresses.items():
            for _, address in email.utils.getaddresses([text]):
                if address:
                    self._by_address.setdefault((field_name, address), set()).add(mid)
        self._record("messageAdded", m)
        return m

    def _modify(self, m: StoredMessage, add: list[str], remove: list[str]) -> None:
        for label in [*add, *remove]:
            if label not in SYSTEM_LABELS and label not in self.user_labels:
                raise invalid(f"Invalid label: {label}")
        added = [x for x in dict.fromkeys(add) if x not in m.labels]
        removed = [x for x in dict.fromkeys(remove) if x in m.labels and x not in added]
        m.labels |= set(added)
        m.labels -= set(removed)
        if added:
            self._record("labelAdded", m, added)
        if removed:
            self._record("labelRemoved", m, removed)

    def _delete(self, m: StoredMessage) -> None:
        del self.messages[m.id]
        for ids in self._by_address.values():
            ids.discard(m.id)
        self._order = None
        self._record("messageDeleted", m)

    def _ordered(self) -> list[StoredMessage]:
        if self._order is None:
            self._order = sorted(
                self.messages.values(), key=lambda m: (m.internal_date, m.id), reverse=True
            )
        return self._order

    def _create_label(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "").strip()
        if not name:
            raise invalid("Invalid label name")
        if name.upper() in SYSTEM_LABELS or any(
            v["name"].lower() == name.lower() for v in self.user_labels.values()
        ):
            raise ApiError(409, "Label name exists or conflicts", "duplicate")
        label_id = f"Label_{self._next_label}"
        self._next_label += 1
        label = {
            "id": label_id,
            "name": name,
            "messageListVisibility": body.get("messageListVisibility", "show"),
            "labelListVisibility": body.get("labelListVisibility", "labelShow"),
            "type": "user",
        }
        if "color" in body:
            label["color"] = body["color"]
        self.user_labels[label_id] = label
        return label

    # -- answering ------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes, in_batch: bool
    ) -> tuple[int, dict[str, str], bytes]:
        """One call: (status, headers, body)."""
        split = urlsplit(target)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(Request(method, path, query, in_batch))
        try:
            route = _route(method, path)
            if route is None:
                page = NOT_FOUND_PAGE.format(path=path).encode()
                return 404, {"Content-Type": "text/html; charset=UTF-8"}, page
            handler, params, allowed = route
            scopes = self._authorize(headers)
            self._injected(f"{method} {path}")
            for name in query:
                if name not in allowed and name not in SYSTEM_PARAMETERS:
                    raise unknown_parameter(name)
            user = params.pop("userId")
            if user not in ("me", self.email):
                raise ApiError(403, f"Delegation denied for {self.email}", "forbidden")
            payload: dict[str, Any] = {}
            if method in ("POST", "PUT", "PATCH") and body.strip():
                try:
                    payload = json.loads(body)
                except ValueError:
                    raise ApiError(
                        400, "Invalid JSON payload received. Unexpected token.", "parseError"
                    ) from None
                if not isinstance(payload, dict):
                    raise invalid("Invalid JSON payload received. Expected an object.")
            with self._lock:
                status, result = handler(self, params, query, payload, scopes)
            if result is None:
                return status, {}, b""
            data = json.dumps(result).encode()
            return status, {"Content-Type": "application/json; charset=UTF-8"}, data
        except ApiError as exc:
            out = {"Content-Type": "application/json; charset=UTF-8", **exc.headers}
            if exc.code == 401:
                out["WWW-Authenticate"] = (
                    'Bearer realm="https://accounts.google.com/", error="invalid_token"'
                )
            return exc.code, out, json.dumps(exc.body()).encode()

    def _authorize(self, headers: dict[str, str]) -> frozenset[str]:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "authError",
                extra={"location": "Authorization", "locationType": "header"},
            )
        return self.tokens[token.strip()]

    def _injected(self, call: str) -> None:
        with self._lock:
            for failure in self.failures:
                if failure.times > 0 and (failure.match is None or failure.match in call):
                    failure.times -= 1
                    break
            else:
                return
            self.failures = [f for f in self.failures if f.times > 0]
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(int(failure.retry_after))
        domain = "usageLimits" if "RateLimit" in failure.reason else "global"
        raise ApiError(
            failure.status, failure.message, failure.reason, domain=domain, headers=headers
        )

    def answer_batch(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """``POST /batch``: each part an HTTP request; each answer a part in the same order."""
        with self._lock:
            self.requests.append(Request("POST", "/batch", {}, False))
        try:
            self._authorize(headers)
        except ApiError as exc:
            return exc.code, {"Content-Type": "application/json"}, json.dumps(exc.body()).encode()
        content_type = headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/mixed"):
            return _batch_error("Content-Type must be multipart/mixed for batch requests.")
        envelope = message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=compat32
        )
        parts = envelope.get_payload() if envelope.is_multipart() else []
        if not parts:
            return _batch_error("Batch request had no parts.")
        if len(parts) > BATCH_LIMIT:
            return _batch_error(f"Too many requests in batch (at most {BATCH_LIMIT}).")
        boundary = "batch_" + hashlib.sha1(body).hexdigest()[:20]
        out: list[bytes] = []
        for part in parts:
            inner = part.get_payload(decode=False)
            inner_bytes = inner.encode() if isinstance(inner, str) else bytes(inner)
            head, _, inner_body = inner_bytes.replace(b"\r\n", b"\n").partition(b"\n\n")
            lines = head.decode("utf-8", "replace").split("\n")
            method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
            inner_headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if ":" in line)
            }
            inner_headers.setdefault("authorization", headers.get("authorization", ""))
            if target.startswith("http"):
                target = urlsplit(target)._replace(scheme="", netloc="").geturl()
            status, rh, rb = self.answer(method, target, inner_headers, inner_body, True)
            reason = {200: "OK", 204: "No Content", 404: "Not Found"}.get(status, "Error")
            head_lines = [f"HTTP/1.1 {status} {reason}"]
            head_lines += [f"{k}: {v}" for k, v in rh.items()]
            head_lines.append(f"Content-Length: {len(rb)}")
            content_id = (part.get("Content-ID") or "").strip()
            response_id = f"<response-{content_id.strip('<>')}>" if content_id else ""
            out.append(
                (
                    f"--{boundary}\r\nContent-Type: application/http\r\n"
                    + (f"Content-ID: {response_id}\r\n" if response_id else "")
                    + "\r\n"
                    + "\r\n".join(head_lines)
                    + "\r\n\r\n"
                ).encode()
                + rb
                + b"\r\n"
            )
        data = b"".join(out) + f"--{boundary}--\r\n".encode()
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, data


def _batch_error(message: str) -> tuple[int, dict[str, str], bytes]:
    return 400, {"Content-Type": "application/json"}, json.dumps(invalid(message).body()).encode()


# -- the methods ------------------------------------------------------------------------------

Params = dict[str, str]
Query = dict[str, list[str]]
Body = dict[str, Any]
Result = tuple[int, dict[str, Any] | None]


def _one(query: Query, name: str, default: str | None = None) -> str | None:
    values = query.get(name)
    return values[-1] if values else default


def _uint(query: Query, name: str, default: int, maximum: int) -> int:
    text = _one(query, name)
    if text is None:
        return default
    if not text.isdigit():
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        raise invalid(f"Invalid value at '{snake}' (TYPE_UINT32), \"{text}\"")
    return max(1, min(int(text), maximum))


def _bool(query: Query, name: str) -> bool:
    text = _one(query, name, "false")
    if text not in ("true", "false", "True", "False", "1", "0"):
        raise invalid(f"Invalid value at '{name}' (TYPE_BOOL), \"{text}\"")
    return text in ("true", "True", "1")


def _only_fields(body: Body, allowed: Iterable[str]) -> None:
    for name in body:
        if name not in allowed:
            raise ApiError(
                400,
                f"Invalid JSON payload received. Unknown name \"{name}\" at 'message': "
                "Cannot find field.",
                "invalid",
            )


def _token(kind: str, offset: int, key: str) -> str:
    return _b64url(json.dumps([kind, offset, key]).encode()).rstrip("=")


def _offset(query: Query, kind: str, key: str) -> int:
    text = _one(query, "pageToken")
    if not text:
        return 0
    try:
        got_kind, offset, got_key = json.loads(_unb64url(text))
    except (ValueError, TypeError):
        raise invalid("Invalid pageToken") from None
    if got_kind != kind or got_key != key or not isinstance(offset, int):
        raise invalid("Invalid pageToken")
    return offset


def get_profile(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    return 200, {
        "emailAddress": g.email,
        "messagesTotal": len(g.messages),
        "threadsTotal": len({m.thread_id for m in g.messages.values()}),
        "historyId": str(g.history_id),
    }


def _system_label(name: str) -> dict[str, Any]:
    label: dict[str, Any] = {"id": name, "name": name, "type": "system"}
    if name in ("INBOX", "SENT", "TRASH", "DRAFT", "SPAM", "STARRED", "UNREAD", "IMPORTANT"):
        label["messageListVisibility"] = "hide" if name in ("SPAM", "TRASH") else "show"
        label["labelListVisibility"] = "labelShow"
    return label


def labels_list(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    labels = [_system_label(n) for n in SYSTEM_LABELS] + [dict(v) for v in g.user_labels.values()]
    return 200, {"labels": labels}


def labels_get(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    if p["id"] in SYSTEM_LABELS:
        return 200, _system_label(p["id"])
    if p["id"] not in g.user_labels:
        raise not_found()
    return 200, dict(g.user_labels[p["id"]])


def labels_create(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    _only_fields(b, ("id", "name", "messageListVisibility", "labelListVisibility", "type", "color"))
    return 200, g._create_label(b)


def labels_delete(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    if p["id"] in SYSTEM_LABELS:
        raise invalid("Invalid delete request")
    if p["id"] not in g.user_labels:
        raise not_found()
    del g.user_labels[p["id"]]
    for m in g.messages.values():
        if p["id"] in m.labels:
            g._modify(m, [], [p["id"]])
    return 204, None


_TOKEN = re.compile(r'\s*(\(|\)|\{|\}|"[^"]*"|[^\s(){}]+)')


def _parse_query(q: str) -> Any:
    """Gmail's search operators that crmail uses: from:, to:, cc:, subject:, label:, in:,
    is:, words; terms side by side must all match, ``OR`` and ``{...}`` any of them,
    ``-term`` none, ``(...)`` groups."""
    tokens = [t for t in _TOKEN.findall(q) if t]
    pos = 0

    def group(end: str | None) -> Any:
        nonlocal pos
        alternatives: list[list[Any]] = [[]]
        any_of = end == "}"
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if end and tok == end:
                break
            if tok == "OR":
                alternatives.append([])
                continue
            term = group(")" if tok == "(" else "}") if tok in ("(", "{") else ("term", tok)
            if any_of:
                alternatives.append([term])
            else:
                alternatives[-1].append(term)
        return ("or", [("and", a) for a in alternatives if a])

    return group(None)


def _evaluate(node: Any, m: StoredMessage) -> bool:
    kind, value = node
    if kind == "or":
        return any(_evaluate(n, m) for n in value) if value else True
    if kind == "and":
        return all(_evaluate(n, m) for n in value)
    text: str = value
    if text.startswith("-") and len(text) > 1:
        return not _evaluate(("term", text[1:]), m)
    op, colon, arg = text.partition(":")
    arg = arg.strip('"').lower()
    if colon and op.lower() in ("from", "to", "cc", "bcc"):
        header = m.addresses[op.lower()]
        if "@" in arg:  # an address: Gmail matches it whole
            return arg in {a.lower() for _, a in email.utils.getaddresses([header])}
        return arg in header
    if colon and op.lower() == "subject":
        return arg in m.subject.lower()
    if colon and op.lower() in ("label", "in"):
        label = text.partition(":")[2].strip('"')
        return arg == "anywhere" or label in m.labels or label.upper() in m.labels
    if colon and op.lower() == "is":
        return {"unread": "UNREAD", "starred": "STARRED", "important": "IMPORTANT"}.get(
            arg, arg.upper()
        ) in m.labels
    needle = text.strip('"').lower()
    return (
        needle in m.subject.lower()
        or needle in m.snippet.lower()
        or any(needle in a for a in m.addresses.values())
    )


def _visible(m: StoredMessage, label_ids: list[str], include_spam_trash: bool) -> bool:
    if not all(label in m.labels for label in label_ids):
        return False
    if include_spam_trash or any(x in ("SPAM", "TRASH") for x in label_ids):
        return True
    return not ({"SPAM", "TRASH"} & m.labels)


def messages_list(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    label_ids = q.get("labelIds", [])
    search = _one(q, "q", "") or ""
    limit = _uint(q, "maxResults", 100, 500)
    spam_trash = _bool(q, "includeSpamTrash")
    key = hashlib.sha1(json.dumps([label_ids, search, spam_trash]).encode()).hexdigest()[:12]
    start = _offset(q, "messages", key)
    parsed = _parse_query(_resolve_labels(g, search)) if search else None
    found: list[StoredMessage] = []
    total = 0
    candidates = _indexed(g, parsed)
    for m in g._ordered() if candidates is None else candidates:
        if not _visible(m, label_ids, spam_trash):
            continue
        if parsed is not None and not _evaluate(parsed, m):
            continue
        total += 1
        if start < total <= start + limit:
            found.append(m)
    out: dict[str, Any] = {}
    if found:
        out["messages"] = [m.brief() for m in found]
    if total > start + limit:
        out["nextPageToken"] = _token("messages", start + limit, key)
    out["resultSizeEstimate"] = total
    return 200, out


def _indexed(g: GmailStandIn, parsed: Any) -> list[StoredMessage] | None:
    """For a query of from:/to:/cc: addresses joined by OR (a record's Emails list), its
    messages newest first from the address index; None for other queries (a scan)."""
    if parsed is None:
        return None
    _kind, alternatives = parsed
    keys = []
    for alternative in alternatives:
        terms = alternative[1]
        if len(terms) != 1 or terms[0][0] != "term":
            return None
        op, colon, arg = terms[0][1].partition(":")
        if not colon or op.lower() not in ("from", "to", "cc", "bcc") or "@" not in arg:
            return None
        keys.append((op.lower(), arg.strip('"').lower()))
    ids = set().union(*(g._by_address.get(key, set()) for key in keys)) if keys else set()
    found = [g.messages[i] for i in ids if i in g.messages]
    return sorted(found, key=lambda m: (m.internal_date, m.id), reverse=True)


def _resolve_labels(g: GmailStandIn, search: str) -> str:
    """``label:Name`` of a user label becomes its id, so the terms match label ids."""

    def swap(match: re.Match[str]) -> str:
        name = match.group(2).strip('"')
        label = g.label_id(name) or next(
            (k for k, v in g.user_labels.items() if v["name"].lower() == name.lower()), name
        )
        return f"{match.group(1)}:{label}"

    return re.sub(r'\b(label|in):("[^"]*"|\S+)', swap, search)


def _message(g: GmailStandIn, p: Params) -> StoredMessage:
    if not re.fullmatch(r"[0-9a-f]{1,32}", p["id"]):
        raise invalid("Invalid id value")
    m = g.messages.get(p["id"])
    if m is None:
        raise not_found()
    return m


def messages_get(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    fmt = _one(q, "format", "full") or "full"
    if fmt not in FORMATS:
        raise invalid(f"Invalid value at 'format' (type.googleapis.com/Format), \"{fmt}\"")
    if fmt == "raw" and q.get("metadataHeaders"):
        raise invalid("Metadata headers may only be specified with metadata format.")
    return 200, _message(g, p).resource(fmt, q.get("metadataHeaders", []))


def messages_modify(
    g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]
) -> Result:
    _only_fields(b, ("addLabelIds", "removeLabelIds"))
    m = _message(g, p)
    add, remove = list(b.get("addLabelIds") or []), list(b.get("removeLabelIds") or [])
    if set(add) & set(remove):
        raise invalid("Label IDs cannot be both added and removed.")
    if "DRAFT" in add or "DRAFT" in remove:
        raise invalid("Invalid label: DRAFT")
    g._modify(m, add, remove)
    return 200, m.with_labels()


def messages_trash(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    m = _message(g, p)
    g._modify(m, ["TRASH"], ["SPAM"])
    return 200, m.with_labels()


def messages_untrash(
    g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]
) -> Result:
    m = _message(g, p)
    g._modify(m, [], ["TRASH"])
    return 200, m.with_labels()


def messages_delete(
    g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]
) -> Result:
    if FULL_SCOPE not in scopes:
        raise ApiError(
            403,
            "Request had insufficient authentication scopes.",
            "insufficientPermissions",
        )
    g._delete(_message(g, p))
    return 204, None


def _raw_from(b: Body) -> bytes:
    if not b.get("raw"):
        raise invalid(
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
        )
    try:
        return _unb64url(str(b["raw"]))
    except ValueError:
        raise invalid("Invalid value for ByteString: raw") from None


def messages_send(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    _only_fields(b, ("raw", "threadId", "labelIds", "id"))
    raw = _raw_from(b)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    if not any(headers.get(h) for h in ("To", "Cc", "Bcc")):
        raise invalid("Recipient address required")
    g.sent.append(raw)
    # Gmail keeps the copy in Sent, without the Bcc header.
    kept = re.sub(rb"(?im)^bcc:.*(\r?\n[ \t].*)*\r?\n", b"", raw, count=1)
    m = g._add(kept, {"SENT"}, None, b.get("threadId"))
    return 200, m.with_labels()


def messages_insert(
    g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]
) -> Result:
    _only_fields(b, ("raw", "threadId", "labelIds"))
    source = _one(q, "internalDateSource", "receivedTime")
    if source not in ("receivedTime", "dateHeader"):
        raise invalid(f"Invalid value at 'internal_date_source', \"{source}\"")
    raw = _raw_from(b)
    when = None if source == "dateHeader" else time.time()
    m = g._add(raw, set(b.get("labelIds") or []), when, b.get("threadId"))
    return 200, m.with_labels()


def history_list(g: GmailStandIn, p: Params, q: Query, b: Body, scopes: frozenset[str]) -> Result:
    text = _one(q, "startHistoryId")
    if not text:
        raise invalid("Missing required field startHistoryId")
    if not text.isdigit():
        raise invalid(f"Invalid value at 'start_history_id' (TYPE_UINT64), \"{text}\"")
    start_id = int(text)
    if start_id < g.oldest_history_id:
        raise not_found()
    types = q.get("historyTypes", [])
    for t in types:
        if t not in HISTORY_TYPES:
            raise invalid(
                f"Invalid value at 'history_types' (type.googleapis.com/HistoryType), \"{t}\""
            )
    label = _one(q, "labelId")
    limit = _uint(q, "maxResults", 100, 500)
    key = hashlib.sha1(json.dumps([text, types, label]).encode()).hexdigest()[:12]
    offset = _offset(q, "history", key)
    matching = [
        r
        for r in g.history
        if r.id > start_id
        and (not types or r.kind in types)
        and (label is None or label in r.message.get("labelIds", []) or label in r.label_ids)
    ]
    page = matching[offset : offset + limit]
    out: dict[str, Any] = {}
    if page:
        out["history"] = [r.resource() for r in page]
    if len(matching) > offset + limit:
        out["nextPageToken"] = _token("history", offset + limit, key)
    out["historyId"] = str(g.history_id)
    return 200, out


_ID = r"(?P<id>[^/]+)"
_USER = r"/gmail/v1/users/(?P<userId>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Any, frozenset[str]]] = [
    (m, re.compile(path + r"\Z"), fn, frozenset(params))
    for m, path, fn, params in [
        ("GET", _USER + "/profile", get_profile, ()),
        ("GET", _USER + "/labels", labels_list, ()),
        ("POST", _USER + "/labels", labels_create, ()),
        ("GET", _USER + "/labels/" + _ID, labels_get, ()),
        ("DELETE", _USER + "/labels/" + _ID, labels_delete, ()),
        (
            "GET",
            _USER + "/messages",
            messages_list,
            ("includeSpamTrash", "labelIds", "maxResults", "pageToken", "q"),
        ),
        (
            "POST",
            _USER + "/messages",
            messages_insert,
            ("deleted", "internalDateSource"),
        ),
        ("POST", _USER + "/messages/send", messages_send, ()),
        ("GET", _USER + "/messages/" + _ID, messages_get, ("format", "metadataHeaders")),
        ("DELETE", _USER + "/messages/" + _ID, messages_delete, ()),
        ("POST", _USER + "/messages/" + _ID + "/modify", messages_modify, ()),
        ("POST", _USER + "/messages/" + _ID + "/trash", messages_trash, ()),
        ("POST", _USER + "/messages/" + _ID + "/untrash", messages_untrash, ()),
        (
            "GET",
            _USER + "/history",
            history_list,
            ("historyTypes", "labelId", "maxResults", "pageToken", "startHistoryId"),
        ),
    ]
]


def _route(method: str, path: str) -> tuple[Any, dict[str, str], frozenset[str]] | None:
    for route_method, pattern, fn, params in ROUTES:
        found = pattern.match(path)
        if found and route_method == method:
            return fn, dict(found.groupdict()), params
    return None


class _Handler(BaseHTTPRequestHandler):
    gmail: GmailStandIn
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    disable_nagle_algorithm = True  # headers and body leave at once, as a real server's do

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.gmail.latency:
            time.sleep(self.gmail.latency)
        path = urlsplit(self.path).path
        if path in ("/batch", "/batch/gmail/v1"):
            if self.command != "POST":
                status, out, data = 404, {"Content-Type": "text/html"}, b""
            else:
                status, out, data = self.gmail.answer_batch(headers, body)
        else:
            status, out, data = self.gmail.answer(self.command, self.path, headers, body, False)
        self.send_response(status)
        for k, v in out.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


def serve(stand_in: GmailStandIn) -> Iterator[GmailStandIn]:
    """For fixtures: ``yield from serve(GmailStandIn())``."""
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
