"""Microsoft Graph (Outlook, Microsoft 365): mail through Graph v1.0's REST API.

Plain HTTPS with ``requests`` (decision 041). Folders are ``/me/mailFolders`` and their
``childFolders``, with crmail's roles from the well-known names (``inbox``,
``sentitems``…). Changes come per folder from ``/me/mailFolders/{id}/messages/delta``:
the cursor is the round's ``@odata.deltaLink``; a first listing is a round without one.
A removed message (``@removed``, which is also how a move out of the folder shows) is a
removal; a message seen again is a flag change, and new when crmail has no copy. A sync
state Graph no longer has (``410 Gone``, ``syncStateNotFound``, ``resyncRequired``) is
listed again from the start: the item ids stay valid, so only what crmail lacks is
fetched. Raw bytes come from ``/me/messages/{id}/$value``, four requests at a time (the
mailbox concurrency Outlook allows an application). Throttling (429, 503 with
``Retry-After``) waits out short pauses and raises ``Throttled`` with ``retry_after``
for longer ones. Sending goes through ``/me/sendMail`` in MIME form; Outlook files the
copy in Sent Items itself. A message past Graph's 4 MB request limit is sent as Microsoft
documents for large attachments: a draft from its MIME without the attachments that make it
too large (``POST /me/messages``), each of those added to it (``POST .../attachments`` under
3 MB, an upload session's ``PUT``s of a few MB above, up to 150 MB), then ``POST
/me/messages/{id}/send``; should a step fail, the draft is deleted and nothing is sent.

Links Graph returns (next pages, delta links) are followed only on the configured API
base: the access token never goes to another host. An upload session's address (on
Outlook's host, pre-authenticated) is sent the file's bytes and no token.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from django.conf import settings

from crmail.mailboxes.drivers.base import (
    FLAGS,
    AuthFailed,
    ConnectFailed,
    CreatesFolders,
    DeletesFolders,
    Driver,
    DriverError,
    FolderDelta,
    LiveMessage,
    LivePage,
    MovesMessages,
    QueriesLive,
    ReadsSenders,
    RemoteFolder,
    RemoteMessage,
    Sends,
    SetsFlags,
    Throttled,
)

# requests takes a tenth of a second to import: only a Microsoft 365 mailbox pays for it
# (every crmail command imports this module through ``connect``).
if TYPE_CHECKING:
    import requests
from crmail.mailboxes.drivers.graph_mime import (
    SEND_LIMIT,
    SMALL_ATTACHMENT,
    UPLOAD_CHUNK,
    Part,
    base64_size,
    split_large,
    with_bcc,
)

DEFAULT_API_URL = "https://graph.microsoft.com/v1.0"
BATCH = 20  # messages a JSON batch asks for (Graph's limit: 20 steps)
BATCHES_AHEAD = 2  # batches in flight while the sync stores what came
# Graph's well-known folder names and crmail's roles (mailFolder, "well-known folder names").
ROLES = {
    "inbox": "inbox",
    "sentitems": "sent",
    "drafts": "drafts",
    "deleteditems": "trash",
    "junkemail": "junk",
    "archive": "archive",
    "outbox": "outbox",
}
SYNC_FIELDS = "isRead,flag,isDraft,receivedDateTime"
LIVE_FIELDS = (
    "from,subject,receivedDateTime,toRecipients,ccRecipients,conversationId,isRead,flag,"
    "internetMessageId"
)
RESET_CODES = frozenset({"syncStateNotFound", "resyncRequired"})
LATER = "; crmail tries again later."
NAME = "Microsoft Graph"


def graph_api_url() -> str:
    """Graph's base URL: ``CRMAIL_GRAPH_API_URL`` (national clouds, tests), else the
    global service."""
    return (getattr(settings, "CRMAIL_GRAPH_API_URL", "") or DEFAULT_API_URL).rstrip("/")


@dataclass(frozen=True)
class GraphConfig:
    token: Callable[[], str]  # an access token for Graph, valid now (renewed by the caller)
    base_url: str = DEFAULT_API_URL
    timeout: float = 30.0
    page_size: int = 200  # Prefer: odata.maxpagesize for delta rounds
    max_wait: float = 5.0  # a Retry-After up to this is waited out; longer pauses the sync


class _Reset(Exception):
    """Graph no longer has the sync state behind a delta link."""


class _Gone(Exception):
    """The item asked for no longer exists."""


def _words(status: int, code: str) -> str:
    return f"{NAME} answered HTTP {status}" + (f" ({code})" if code else "")


def _wait_words(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} seconds"
    minutes = round(seconds / 60)
    return f"{minutes} minutes" if minutes < 90 else f"{round(minutes / 60)} hours"


class GraphDriver(
    Driver,
    ReadsSenders,
    SetsFlags,
    MovesMessages,
    CreatesFolders,
    DeletesFolders,
    QueriesLive,
    Sends,
):
    """One mailbox through Microsoft Graph, for one sync or one change."""

    def __init__(self, config: GraphConfig, *, on_close: Callable[[], None] | None = None) -> None:
        self.config = config
        self.base = config.base_url.rstrip("/")
        self._on_close = on_close
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._flags: dict[str, tuple[frozenset[str], datetime | None]] = {}
        self._roles: dict[str, str] | None = None

    # -- connection ---------------------------------------------------------------------

    def connect(self) -> None:
        """Check that the token opens the mailbox (``GET /me``)."""
        self._get("/me", {"$select": "id,mail,userPrincipalName"})

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _url(self, path_or_link: str) -> str:
        if path_or_link.startswith("/"):
            return self.base + path_or_link
        if not path_or_link.startswith(self.base + "/"):
            raise DriverError(
                f"{NAME} pointed crmail to an address outside its API; crmail did not follow.",
                kind="protocol",
            )
        return path_or_link

    def _request(
        self,
        method: str,
        path_or_link: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> requests.Response:
        """One call to the API, with the access token."""
        url = self._url(path_or_link)
        send_headers = {
            "Authorization": f"Bearer {token or self.config.token()}",
            **(headers or {}),
        }
        return self._call(method, url, params=params, json=json, data=data, headers=send_headers)

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str],
    ) -> requests.Response:
        """One call to ``url`` with ``headers`` as they are, short throttling pauses waited
        out; errors in words."""
        import requests

        for attempt in range(4):
            try:
                response = self._session().request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=self.config.timeout,
                    allow_redirects=False,
                )
            except requests.Timeout:
                raise ConnectFailed(f"{NAME} did not answer in time.", kind="timeout") from None
            except requests.RequestException:
                raise ConnectFailed(f"{NAME} could not be reached.") from None
            if response.status_code < 400:
                return response
            wait = _retry_after(response.status_code, response.headers.get("Retry-After"))
            if wait is not None and wait <= self.config.max_wait and attempt < 3:
                time.sleep(wait)
                continue
            self._raise(response.status_code, _error_code(response), wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise(self, status: int, code: str, wait: float | None) -> None:
        if status == 410 or code in RESET_CODES:
            raise _Reset()
        if wait is not None or status in (429, 509):
            wait = wait if wait is not None else 60.0
            raise Throttled(
                f"{NAME} asked crmail to slow down (too many requests); the sync waits "
                f"{_wait_words(wait)}, as it asked, and then carries on by itself.",
                retry_after=wait,
            )
        if status == 401:
            raise AuthFailed(
                f"{NAME} refused crmail's access: sign in with Microsoft again.",
                kind="oauth_revoked",
            )
        if status == 403:
            raise AuthFailed(
                f"{NAME} refused access to this mailbox ({code or 'access denied'}): the "
                "sign-in must allow reading and writing mail (Mail.ReadWrite, Mail.Send).",
                kind="auth",
            )
        if status == 404 and code in ("ErrorItemNotFound", "itemNotFound", ""):
            raise _Gone()
        if status >= 500:
            raise ConnectFailed(f"{_words(status, code)}{LATER}")
        raise DriverError(f"{_words(status, code)} and did not do it.", kind="refused")

    def _get(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
        response = self._request("GET", path, params=params, **kw)
        try:
            data = response.json()
        except ValueError:
            raise DriverError(
                f"{NAME} answered something that is not JSON.", kind="protocol"
            ) from None
        if not isinstance(data, dict):
            raise DriverError(f"{NAME} answered an unexpected document.", kind="protocol")
        return data

    def _pages(
        self, path: str, params: dict[str, str] | None = None, prefer: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink``."""
        headers = {"Prefer": prefer} if prefer else None
        page = self._get(path, params, headers=headers)
        while True:
            yield from _items(page)
            link = page.get("@odata.nextLink")
            if not link:
                return
            page = self._get(str(link), headers=headers)

    # -- folders ------------------------------------------------------------------------

    def _role_ids(self) -> dict[str, str]:
        if self._roles is None:
            roles: dict[str, str] = {}
            for name, role in ROLES.items():
                try:
                    folder = self._get(f"/me/mailFolders/{name}", {"$select": "id"})
                except _Gone:
                    continue
                roles[str(folder["id"])] = role
            self._roles = roles
        return self._roles

    def list_folders(self) -> list[RemoteFolder]:
        roles = self._role_ids()
        out: list[RemoteFolder] = []
        select = {"$select": "id,displayName,childFolderCount", "$top": "100"}
        todo: list[tuple[str, str]] = [("/me/mailFolders", "")]
        while todo:
            path, prefix = todo.pop(0)
            for item in self._pages(path, select):
                fid, name = str(item.get("id", "")), str(item.get("displayName", ""))
                if not fid:
                    continue
                shown = f"{prefix}{name}"
                out.append(RemoteFolder(fid, shown, roles.get(fid)))
                if int(item.get("childFolderCount") or 0) > 0:
                    todo.append(
                        (f"/me/mailFolders/{quote(fid, safe='')}/childFolders", shown + "/")
                    )
        return out

    def create_folder(self, name: str, role: str | None = None) -> RemoteFolder:
        try:
            response = self._request("POST", "/me/mailFolders", json={"displayName": name})
        except DriverError as exc:
            existing = next((f for f in self.list_folders() if f.name == name), None)
            if existing is None:
                raise DriverError(f"The folder {name!r} could not be created: {exc}") from None
            return existing
        item = response.json()
        return RemoteFolder(str(item["id"]), str(item.get("displayName", name)), role)

    def delete_folder(self, folder: RemoteFolder) -> None:
        """``DELETE /me/mailFolders/{id}`` (Outlook keeps it in Deleted Items); a folder
        already gone (404) is taken as deleted."""
        try:
            self._request("DELETE", f"/me/mailFolders/{quote(folder.remote_id, safe='')}")
        except _Gone:
            return

    # -- changes ------------------------------------------------------------------------

    def changes(self, folder: RemoteFolder, cursor: dict[str, Any] | None) -> FolderDelta:
        link = (cursor or {}).get("delta_link")
        if isinstance(link, str) and link:
            try:
                return self._round(folder, link)
            except _Reset:
                pass  # Graph lost the sync state: list the folder again
        try:
            return self._round(folder, None)
        except _Reset:
            raise DriverError(
                f"{NAME} could not list the folder {folder.name}; crmail tries again later.",
                kind="refused",
            ) from None

    def _round(self, folder: RemoteFolder, link: str | None) -> FolderDelta:
        prefer = f"odata.maxpagesize={self.config.page_size}"
        headers = {"Prefer": prefer}
        if link is None:
            path = f"/me/mailFolders/{quote(folder.remote_id, safe='')}/messages/delta"
            page = self._get(path, {"$select": SYNC_FIELDS}, headers=headers)
        else:
            page = self._get(link, headers=headers)
        seen: dict[str, tuple[frozenset[str], datetime | None]] = {}
        removed: set[str] = set()
        while True:
            for item in _items(page):
                mid = str(item.get("id") or "")
                if not mid:
                    continue
                if "@removed" in item:
                    seen.pop(mid, None)
                    removed.add(mid)
                else:
                    removed.discard(mid)
                    seen[mid] = (_flags(item), _when(item.get("receivedDateTime")))
            next_link = page.get("@odata.nextLink")
            if next_link:
                page = self._get(str(next_link), headers=headers)
                continue
            delta_link = page.get("@odata.deltaLink")
            if not delta_link:
                raise DriverError(f"{NAME} ended a listing without a delta link.", kind="protocol")
            self._url(str(delta_link))  # refuse a link off the API before storing it
            break
        self._flags.update(seen)
        oldest_first = sorted(seen, key=lambda i: (seen[i][1] is None, seen[i][1] or 0, i))
        return FolderDelta(
            cursor={"delta_link": str(delta_link)},
            new_ids=oldest_first,
            flag_changes={i: seen[i][0] for i in seen},
            removed_ids=sorted(removed),
            present_ids=list(seen) if link is None else None,
        )

    # -- fetching -----------------------------------------------------------------------

    def fetch(self, folder: RemoteFolder, ids: list[str]) -> Iterator[RemoteMessage]:
        """In ``ids``' order, ``BATCH`` messages a request (JSON batching: one round trip
        for twenty, where one a message cost a round trip each), with ``BATCHES_AHEAD``
        batches in flight while the caller stores what came: fetching and storing
        overlap, and a few batches at most wait in memory."""
        chunks = [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]
        pending: deque[Future[list[RemoteMessage | None]]] = deque()
        with ThreadPoolExecutor(max_workers=BATCHES_AHEAD) as pool:
            try:
                token = ""
                for n, chunk in enumerate(chunks):
                    if n % 4 == 0:
                        token = self.config.token()  # renewed during long syncs
                    pending.append(pool.submit(self._fetch_batch, chunk, token))
                    while len(pending) > BATCHES_AHEAD or (pending and n == len(chunks) - 1):
                        yield from (m for m in pending.popleft().result() if m is not None)
            finally:
                for future in pending:
                    future.cancel()

    def _fetch_batch(self, mids: list[str], token: str) -> list[RemoteMessage | None]:
        """The messages ``mids`` (in their order; None for one gone since it was listed):
        their MIME through ``POST /$batch``, a step each (``_steps``); a message whose
        flags the listing did not give is fetched on its own."""
        listed = [mid for mid in mids if mid in self._flags]
        answers = self._steps(
            [f"/me/messages/{quote(mid, safe='')}/$value" for mid in listed], token
        )
        raws = {
            mid: (None if step is None else _step_bytes(step))
            for mid, step in zip(listed, answers, strict=True)
        }
        found: list[RemoteMessage | None] = []
        for mid in mids:
            if mid not in self._flags:
                found.append(self._fetch_one(mid, token))
                continue
            raw = raws.get(mid)
            flags, when = self._flags[mid]
            found.append(None if raw is None else RemoteMessage(mid, flags, raw, len(raw), when))
        return found

    def senders(
        self, folder: RemoteFolder, ids: list[str]
    ) -> dict[str, tuple[str, datetime | None]]:
        """From and received time, twenty messages a request (``$select``): nothing else
        of the mail is read."""
        out: dict[str, tuple[str, datetime | None]] = {}
        token = self.config.token()
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            urls = [
                f"/me/messages/{quote(mid, safe='')}?$select=from,receivedDateTime" for mid in chunk
            ]
            for mid, step in zip(chunk, self._steps(urls, token), strict=True):
                body = step.get("body") if step is not None else None
                if isinstance(body, dict):
                    out[mid] = (_address(body.get("from")), _when(body.get("receivedDateTime")))
        return out

    def _steps(self, urls: list[str], token: str) -> list[dict[str, Any] | None]:
        """Each of ``urls`` (at most ``BATCH``) asked as a step of one ``POST /$batch``: its
        answer (status 200), or None for an item gone (404). A step Graph throttles is
        asked again, in the next batch, after the wait it names; any other failed step
        raises in words, as a failed request does."""
        answers: dict[int, dict[str, Any] | None] = {}
        todo = list(range(len(urls)))
        for attempt in range(4):
            if not todo:
                break
            steps = [{"id": str(n), "method": "GET", "url": urls[n]} for n in todo]
            response = self._request("POST", "/$batch", json={"requests": steps}, token=token)
            by_id = _batch_answers(response)
            again, wait = [], 0.0
            for n in todo:
                step = by_id.get(str(n))
                if step is None:
                    raise DriverError(f"{NAME} left a step of a batch unanswered.", kind="protocol")
                status = int(step.get("status") or 0)
                if status in (200, 404):
                    answers[n] = step if status == 200 else None
                    continue
                headers = {str(k).lower(): v for k, v in (step.get("headers") or {}).items()}
                retry = _retry_after(status, str(headers.get("retry-after") or ""))
                if retry is not None and retry <= self.config.max_wait and attempt < 3:
                    again.append(n)
                    wait = max(wait, retry)
                    continue
                self._raise(status, _code_of(step.get("body")), retry)
            if again:
                time.sleep(wait)
            todo = again
        return [answers.get(n) for n in range(len(urls))]

    def _fetch_one(self, mid: str, token: str) -> RemoteMessage | None:
        path = f"/me/messages/{quote(mid, safe='')}"
        try:
            known = self._flags.get(mid)
            if known is None:
                item = self._get(path, {"$select": SYNC_FIELDS}, token=token)
                known = (_flags(item), _when(item.get("receivedDateTime")))
            raw = self._request("GET", path + "/$value", token=token).content
        except _Gone:
            return None  # moved or deleted since it was listed: the next round says so
        return RemoteMessage(mid, known[0], raw, len(raw), known[1])

    # -- changes made in crmail ---------------------------------------------------------

    def set_flags(
        self, folder: RemoteFolder, id: str, add: Iterable[str], remove: Iterable[str]
    ) -> None:
        add, remove = set(add), set(remove)
        other = (add | remove) - {"seen", "flagged"}
        if other - set(FLAGS):
            raise ValueError(f"Unknown flags: {', '.join(sorted(other - set(FLAGS)))}.")
        if other:
            raise DriverError(
                f"{NAME} keeps no {', '.join(sorted(other))} mark crmail can set.",
                kind="unsupported",
            )
        body: dict[str, Any] = {}
        if "seen" in add | remove:
            body["isRead"] = "seen" in add
        if "flagged" in add | remove:
            body["flag"] = {"flagStatus": "flagged" if "flagged" in add else "notFlagged"}
        if body:
            self._change(f"/me/messages/{quote(id, safe='')}", "PATCH", body)

    def move(self, folder: RemoteFolder, id: str, dest: RemoteFolder) -> str | None:
        response = self._change(
            f"/me/messages/{quote(id, safe='')}/move", "POST", {"destinationId": dest.remote_id}
        )
        new_id = response.json().get("id")
        return str(new_id) if new_id else None

    def delete(self, folder: RemoteFolder, id: str) -> str | None:
        if folder.role == "trash":
            self._change(f"/me/messages/{quote(id, safe='')}", "DELETE", None)
            return None
        return self.move(folder, id, RemoteFolder("deleteditems", "Deleted Items", "trash"))

    def _change(self, path: str, method: str, body: dict[str, Any] | None) -> requests.Response:
        try:
            return self._request(method, path, json=body)
        except _Gone:
            raise DriverError(
                "The message is no longer there (moved or deleted in another program).",
                kind="gone",
            ) from None

    # -- live queries and sending -------------------------------------------------------

    def query(
        self, addresses: Sequence[str], *, page: str | None = None, limit: int = 25
    ) -> LivePage:
        if page:
            data = self._get(page)
        else:
            terms = [f"participants:{a}" for a in addresses if _searchable(a)]
            if not terms:
                return LivePage([])
            params = {
                "$search": '"' + " OR ".join(terms) + '"',
                "$select": LIVE_FIELDS,
                "$top": str(max(1, min(limit, 1000))),
            }
            try:
                data = self._get("/me/messages", params)
            except _Gone:
                return LivePage([])
        messages = [_live(item) for item in _items(data) if item.get("id")]
        next_link = data.get("@odata.nextLink")
        if next_link:
            self._url(str(next_link))
        return LivePage(messages, str(next_link) if next_link else None)

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> None:
        """One ``sendMail`` request (the MIME in base64) for a message within Graph's
        request limit; a larger one as a draft and its attachments (``_send_large``)."""
        mime = with_bcc(raw, recipients)
        try:
            if base64_size(len(mime)) > SEND_LIMIT:
                self._send_large(mime)
                return
            body = base64.b64encode(mime)
            self._request("POST", "/me/sendMail", data=body, headers={"Content-Type": "text/plain"})
        except (Throttled, _Gone, _Reset) as exc:  # in words for a send, not for a sync
            raise _not_sent(exc) from None

    def _send_large(self, mime: bytes) -> None:
        """A message past the request limit, the way Microsoft documents large attachments:
        a draft from its MIME without the attachments that make it too large (``POST
        /me/messages``, base64 MIME), each of those added to the draft (``_attach``), then
        ``POST /me/messages/{id}/send``, which files it in Sent Items. When anything fails
        once the draft exists, the draft is deleted: nothing half made goes out or stays."""
        slim, parts = split_large(mime)
        created = self._request(
            "POST",
            "/me/messages",
            data=base64.b64encode(slim),
            headers={"Content-Type": "text/plain"},
        )
        try:
            draft_id = str(created.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise DriverError(
                f"{NAME} made a draft without saying which.", kind="protocol"
            ) from None
        path = f"/me/messages/{quote(draft_id, safe='')}"
        for part in parts:
            try:
                self._attach(path, part)
            except (DriverError, _Gone, _Reset) as exc:
                raise self._unsent(path, exc, at=part.name) from None
        try:
            self._request("POST", path + "/send")
        except ConnectFailed as exc:
            if exc.kind != "timeout":
                raise self._unsent(path, exc) from None
            raise DriverError(  # it may have gone: deleting the draft could not unsend it
                f"{NAME} did not answer in time when asked to send the message, which may "
                "have gone all the same: look in Outlook's Sent Items (if it is not there, "
                "its draft is in Drafts) before sending it again.",
                kind="timeout",
            ) from None
        except (DriverError, _Gone, _Reset) as exc:
            raise self._unsent(path, exc) from None

    def _attach(self, path: str, part: Part) -> None:
        """``part`` added to the draft at ``path``: in one request (a fileAttachment with
        its base64 ``contentBytes``) when that stays within the limit, a file under 3 MB;
        through an upload session otherwise."""
        if len(part.data) >= SMALL_ATTACHMENT:
            self._upload(path, part)
            return
        attachment = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            **_described(part),
            "contentBytes": base64.b64encode(part.data).decode("ascii"),
        }
        self._request("POST", path + "/attachments", json=attachment)

    def _upload(self, path: str, part: Part) -> None:
        """``part`` through an upload session (attachment: createUploadSession): PUTs of
        ``UPLOAD_CHUNK`` bytes, in order, each from where the answer before it expects the
        next (``nextExpectedRanges``), to the session's ``uploadUrl``. That address is
        pre-authenticated: it is sent no token."""
        item = {"attachmentType": "file", **_described(part), "size": len(part.data)}
        session = self._request(
            "POST", path + "/attachments/createUploadSession", json={"AttachmentItem": item}
        )
        url = self._upload_url(session)
        total, start = len(part.data), 0
        while True:
            end = min(start + UPLOAD_CHUNK, total)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{end - 1}/{total}",
            }
            try:
                answer = self._call("PUT", url, data=part.data[start:end], headers=headers)
            except _Gone:
                raise DriverError(
                    f"{NAME} no longer had the upload session (it lasts a limited time)",
                    kind="refused",
                ) from None
            if end == total:
                return
            start = _next_start(answer, start, end)

    def _upload_url(self, session: requests.Response) -> str:
        """The ``uploadUrl`` of a new upload session: HTTPS (Outlook's own host), or on
        the API's host and scheme (a stand-in on loopback)."""
        try:
            url = session.json().get("uploadUrl")
        except (ValueError, AttributeError):
            url = None
        if isinstance(url, str):
            parts, api = urlsplit(url), urlsplit(self.base)
            if parts.netloc and (
                parts.scheme == "https" or (parts.scheme, parts.netloc) == (api.scheme, api.netloc)
            ):
                return url
        raise DriverError(f"{NAME} opened an upload without a usable address.", kind="protocol")

    def _unsent(self, path: str, exc: Exception, at: str = "") -> DriverError:
        """The error, in words, for a large message that stopped half way (``at`` an
        attachment): the draft at ``path`` is deleted first (gone counts as deleted)."""
        cleanup = "The unfinished draft was deleted from Outlook."
        try:
            self._request("DELETE", path)
        except _Gone:
            pass
        except (DriverError, _Reset):
            cleanup = "An unfinished draft may be left in Outlook's Drafts folder: delete it there."
        return _not_sent(exc, f" (it stopped at the attachment {at})" if at else "", cleanup)


# -- reading Graph's documents ----------------------------------------------------------------


def _retry_after(status: int, header: str | None) -> float | None:
    """How long a throttled answer (429, 503, 509) asks to wait; None for any other."""
    if status not in (429, 503, 509):
        return None
    value = (header or "").strip()
    if value.isdigit():
        return float(value)
    return 60.0 if status in (429, 509) else None


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return _code_of(body)


def _code_of(body: Any) -> str:
    """The ``error.code`` of an error body (an answer's, or a batch step's)."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code)[:80] if isinstance(code, str) else ""


def _batch_answers(response: requests.Response) -> dict[str, dict[str, Any]]:
    """A batch's answers by their step's id."""
    try:
        answers = response.json().get("responses")
    except (ValueError, AttributeError):
        answers = None
    if not isinstance(answers, list):
        raise DriverError(f"{NAME} answered a batch without responses.", kind="protocol")
    return {str(a.get("id")): a for a in answers if isinstance(a, dict)}


def _step_bytes(step: dict[str, Any]) -> bytes:
    """The body of a batch step that is not JSON (a message's MIME): Graph hands it over
    as a base64 string."""
    body = step.get("body")
    if not isinstance(body, str):
        raise DriverError(f"{NAME} answered a message's MIME without it.", kind="protocol")
    try:
        return base64.b64decode(body, validate=False)
    except ValueError:
        raise DriverError(
            f"{NAME} answered a message's MIME unreadably.", kind="protocol"
        ) from None


def _next_start(answer: requests.Response, start: int, end: int) -> int:
    """Where an upload goes on after the range ``start``-``end``: the first of the answer's
    ``nextExpectedRanges`` ("2097152" for Outlook, "2097152-" in other sessions); ``end``
    when it names none."""
    try:
        ranges = answer.json().get("nextExpectedRanges")
    except (ValueError, AttributeError):
        ranges = None
    if not ranges:
        return end
    first = str(ranges[0]).split("-", 1)[0].strip() if isinstance(ranges, list) else ""
    if not first.isdigit() or not start < int(first) <= end:
        raise DriverError(f"{NAME} expected an upload to go on from elsewhere.", kind="protocol")
    return int(first)


def _described(part: Part) -> dict[str, Any]:
    """What a file attachment and an upload session's item both say of ``part``."""
    described: dict[str, Any] = {
        "name": part.name,
        "contentType": part.content_type,
        "isInline": part.inline,
    }
    if part.content_id:
        described["contentId"] = part.content_id
    return described


def _not_sent(exc: Exception, where: str = "", cleanup: str = "") -> DriverError:
    """A send that failed, in words for a send (the driver's other words are a sync's)."""
    if isinstance(exc, Throttled):
        wait = _wait_words(exc.retry_after if exc.retry_after is not None else 60.0)
        why = f"{NAME} asked crmail to slow down (too many requests) for {wait}"
    elif isinstance(exc, _Gone):
        why = f"{NAME} answered HTTP 404 (not found)"
    elif isinstance(exc, _Reset):
        why = f"{NAME} answered HTTP 410 (gone)"
    else:
        why = str(exc).removesuffix(LATER).removesuffix(".")
    words = f"The message was not sent{where}: {why}."
    kind = exc.kind if isinstance(exc, DriverError) else "refused"
    return DriverError(f"{words} {cleanup}" if cleanup else words, kind=kind)


def _items(page: dict[str, Any]) -> list[dict[str, Any]]:
    value = page.get("value")
    if not isinstance(value, list):
        raise DriverError(f"{NAME} answered a list without items.", kind="protocol")
    return [item for item in value if isinstance(item, dict)]


def _flags(item: dict[str, Any]) -> frozenset[str]:
    flags: set[str] = set()
    if item.get("isRead") is True:
        flags.add("seen")
    if isinstance(item.get("flag"), dict) and item["flag"].get("flagStatus") == "flagged":
        flags.add("flagged")
    if item.get("isDraft") is True:
        flags.add("draft")
    return frozenset(flags)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _address(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    email = value.get("emailAddress")
    if not isinstance(email, dict):
        return ""
    name, address = str(email.get("name") or ""), str(email.get("address") or "")
    return f"{name} <{address}>" if name and name != address else address


def _live(item: dict[str, Any]) -> LiveMessage:
    recipients = tuple(
        a
        for key in ("toRecipients", "ccRecipients")
        for r in (item.get(key) or [])
        if (a := _address(r))
    )
    return LiveMessage(
        remote_id=str(item["id"]),
        sender=_address(item.get("from")),
        received_at=_when(item.get("receivedDateTime")),
        subject=str(item.get("subject") or ""),
        recipients=recipients,
        thread_id=str(item.get("conversationId") or ""),
        flags=_flags(item),
        message_id=str(item.get("internetMessageId") or "").strip(),
    )


def _searchable(address: str) -> bool:
    """An address KQL can take as it is inside the quoted $search (no quotes, spaces,
    parentheses or control characters)."""
    return (
        "@" in address
        and len(address) <= 254
        and not any(c.isspace() or c in '"\\()' or ord(c) < 32 for c in address)
    )
