"""A record's Emails list with the mail asked live, and opening one such message.

Mailboxes that keep no copy of the mail (a Gmail API or Graph mailbox in privacy mode)
are asked at reading time: one ``QueriesLive.query`` per mailbox with the record's
addresses (``mailboxes.live``, cached for minutes). Which mailboxes, and which of their
messages, a viewer is shown is decided by ``visibility.live_mailboxes`` — the owners whose
copies ``visible_copies`` would show — and ``LiveAccess.shows`` (excluded domains).

The live messages are merged with the stored list newest first, a page at a time. A page's
position is a cursor signed by crmail: the stored list's offset and, per mailbox, the
provider's page token and how many of that page were shown. A provider that does not
answer leaves its mail out of the page, said in words (``notices``); never an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses
from typing import Any

from django.core import signing
from django.db.models import QuerySet

from crmail.crm.models import Deal, EmailAddress
from crmail.linking.models import Module
from crmail.mail.models import Message
from crmail.mail.parse import ParsedMessage, Unparseable, parse_message
from crmail.mailboxes import live
from crmail.mailboxes.drivers.base import DriverError, LiveMessage
from crmail.mailboxes.models import Mailbox
from crmail.people.models import User
from crmail.sharing.visibility import LiveAccess, live_mailboxes, own_live_access

log = logging.getLogger(__name__)

MAX_ADDRESSES = 20  # a record's addresses asked for at once
CURSOR_SALT = "crmail.sharing.live.cursor"
CURSOR_MAX_AGE = 60 * 60  # seconds a page's position stays usable
LIVE_VIEWS = ("all", "user")  # the views that include live mail (not sent/imap/pop)


class BadCursor(ValueError):
    """A cursor crmail did not make, or too old to use."""


def record_addresses(module: str, record_id: int) -> list[str]:
    """The addresses a record's live mail is asked for: a lead's or contact's own, an
    account's contacts', a deal's contact's."""
    if module == Module.LEADS:
        rows = EmailAddress.objects.filter(lead_id=record_id)
    elif module == Module.CONTACTS:
        rows = EmailAddress.objects.filter(contact_id=record_id)
    elif module == Module.ACCOUNTS:
        rows = EmailAddress.objects.filter(contact__account_id=record_id)
    elif module == Module.DEALS:
        contact = Deal.objects.filter(pk=record_id).values("contact_id")
        rows = EmailAddress.objects.filter(contact_id__in=contact)
    else:
        return []
    addresses = rows.order_by("-is_primary", "address").values_list("address", flat=True)
    return list(dict.fromkeys(a.lower() for a in addresses))[:MAX_ADDRESSES]


def mailboxes_for(
    viewer: User, module: str, record_id: int, view: str, user_id: int | None, tag: str | None
) -> list[LiveAccess]:
    """The mailboxes one view of the record's list asks live (none for a tag: live mail
    carries no tags in crmail; none for the sent, IMAP and POP views)."""
    if tag is not None or view not in LIVE_VIEWS:
        return []
    return live_mailboxes(viewer, module, record_id, owner_id=user_id if view == "user" else None)


@dataclass(frozen=True)
class LiveItem:
    """A message asked live, as a row of a record's Emails list."""

    mailbox: Mailbox
    message: LiveMessage

    @property
    def date(self) -> datetime | None:
        return self.message.received_at

    @property
    def sender_name(self) -> str:
        return _person(self.message.sender)[0]

    @property
    def sender_address(self) -> str:
        return _person(self.message.sender)[1]

    @property
    def provider(self) -> str:
        return live.provider_name(self.mailbox)


@dataclass
class MixedPage:
    """One page of a record's Emails list with live mail: stored messages and ``LiveItem``s,
    newest first; ``next_cursor`` for the next page (None: the last)."""

    items: list[Message | LiveItem]
    next_cursor: str | None
    notices: list[str] = field(default_factory=list)
    live_mailboxes: int = 0


def _person(header: str) -> tuple[str, str]:
    found = getaddresses([" ".join(header.split())])
    return found[0] if found else ("", "")


def participants(message: LiveMessage) -> list[str]:
    """The From, To and Cc addresses of a message listed live."""
    return [a.lower() for a in (_person(message.sender)[1], *message.recipients) if a]


def read_cursor(cursor: str | None) -> dict[str, Any]:
    """The position a cursor names (``BadCursor`` for one crmail did not make lately)."""
    if not cursor:
        return {"s": 0, "m": {}}
    try:
        data = signing.loads(cursor, salt=CURSOR_SALT, max_age=CURSOR_MAX_AGE)
    except signing.BadSignature:
        raise BadCursor(
            "This position in the list is unknown or too old: start again from the first page."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise BadCursor("This position in the list is unknown: start from the first page.")
    return data


def _sort_key(item: Message | LiveItem) -> tuple[float, int]:
    when = item.date
    stamp = when.timestamp() if when is not None else float("-inf")
    return (stamp, item.pk if isinstance(item, Message) else 0)


@dataclass
class _Source:
    """One mailbox's live mail from a position: the provider's page token and the number
    of that page already shown."""

    access: LiveAccess
    token: str | None
    skip: int
    buffered: list[tuple[str | None, int, LiveMessage]] = field(default_factory=list)
    more: str | None = None  # the token after what is buffered
    exhausted: bool = False
    shown: list[int] = field(default_factory=list)  # buffer indexes the viewer may see


def merged_page(
    viewer: User,
    module: str,
    record_id: int,
    stored: QuerySet[Message],
    mailboxes: Sequence[LiveAccess],
    *,
    cursor: str | None,
    limit: int,
) -> MixedPage:
    """A page of ``stored`` (a record's Emails list, newest first) merged with the live mail
    of ``mailboxes`` on the record, from ``cursor``."""
    position = read_cursor(cursor)
    offset: int = position["s"]
    addresses = record_addresses(module, record_id)
    notices: list[str] = []
    rows = list(stored[offset : offset + limit + 1])
    more_stored = len(rows) > limit
    rows = rows[:limit]
    sources: list[_Source] = []
    for access in mailboxes:
        state = position["m"].get(str(access.mailbox.pk))
        if state is None and cursor:
            continue  # exhausted on an earlier page (or not asked then)
        token, skip = (state[0], int(state[1])) if state else (None, 0)
        source = _Source(access, token, skip)
        if addresses:
            _fill(source, addresses, limit, notices)
        else:
            source.exhausted = True
        source.shown = [
            i for i, (_, _, m) in enumerate(source.buffered) if access.shows(participants(m))
        ]
        sources.append(source)
    _once(stored, sources)
    candidates: list[tuple[Message | LiveItem, _Source | None, int]] = [(m, None, 0) for m in rows]
    for source in sources:
        for index in source.shown:
            message = source.buffered[index][2]
            candidates.append((LiveItem(source.access.mailbox, message), source, index))
    candidates.sort(key=lambda c: _sort_key(c[0]), reverse=True)
    chosen = candidates[:limit]
    taken_stored = sum(1 for _, s, _ in chosen if s is None)
    last: dict[int, int] = {}  # per source, the buffer index of its last item shown
    for _, source, index in chosen:
        if source is not None:
            last[id(source)] = max(last.get(id(source), -1), index)
    next_position: dict[str, Any] = {"s": offset + taken_stored, "m": {}}
    any_more = more_stored or taken_stored < len(rows)
    for source in sources:
        state = _next_state(source, last.get(id(source), -1))
        if state is not None:
            next_position["m"][str(source.access.mailbox.pk)] = state
            any_more = True
    next_cursor = (
        signing.dumps(next_position, salt=CURSOR_SALT, compress=True) if any_more else None
    )
    return MixedPage(
        items=[c[0] for c in chosen],
        next_cursor=next_cursor,
        notices=notices,
        live_mailboxes=len(mailboxes),
    )


def _core(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def _once(stored: QuerySet[Message], sources: list[_Source]) -> None:
    """A message held in several places shows once (by its Message-ID): a stored copy
    the list holds rather than a live one, and of live ones the first mailbox's. What is
    left out is left out of the sources' shown messages, so the cursor steps over it."""
    keys = {
        _core(source.buffered[i][2].message_id)
        for source in sources
        for i in source.shown
        if _core(source.buffered[i][2].message_id)
    }
    seen: set[str] = set()
    if keys:
        forms = [form for key in keys for form in (key, f"<{key}>")]
        held = stored.filter(message_id__in=forms).values_list("message_id", flat=True)
        seen = {_core(mid) for mid in held}
    for source in sources:
        kept = []
        for i in source.shown:
            key = _core(source.buffered[i][2].message_id)
            if key and key in seen:
                continue
            if key:
                seen.add(key)
            kept.append(i)
        source.shown = kept


def _next_state(source: _Source, last: int) -> list[Any] | None:
    """Where the next page takes up ``source``: at its first message not shown yet that may
    be shown; None when it has nothing more."""
    if not source.buffered:  # it did not answer (ask again), or had nothing
        return None if source.exhausted else [source.token, source.skip]
    left = [i for i in source.shown if i > last]
    if left:
        token, index, _ = source.buffered[left[0]]
        return [token, index]
    return [source.more, 0] if source.more else None


def _fill(source: _Source, addresses: list[str], limit: int, notices: list[str]) -> None:
    """Buffer at least ``limit`` of the source's messages from its position (each entry
    with the token and index that name its place), asking the provider page by page."""
    token, skip = source.token, source.skip
    mailbox = source.access.mailbox
    while len(source.buffered) < limit:
        try:
            page = live.query(mailbox, addresses, page=token, limit=limit)
        except DriverError as exc:
            notices.append(_did_not_answer(mailbox, str(exc)))
            source.buffered.clear()
            return
        except Exception as exc:  # never a 500 on a record's page; the type only in logs
            log.warning("live query of mailbox %s: %s", mailbox.pk, type(exc).__name__)
            notices.append(_did_not_answer(mailbox, ""))
            source.buffered.clear()
            return
        for index, message in enumerate(page.messages):
            if index >= skip:
                source.buffered.append((token, index, message))
        skip = 0
        token = page.next_page
        source.more = token
        if token is None:
            source.exhausted = True
            return


def _did_not_answer(mailbox: Mailbox, why: str) -> str:
    name = live.provider_name(mailbox)
    reason = f" ({why.rstrip('.')})" if why else ""
    return f"{name} did not answer for {mailbox.email}{reason}: showing stored mail only."


# --- opening one message ------------------------------------------------------------------


def may_open(
    viewer: User, mailbox_id: int, module: str | None, record_id: int | None
) -> LiveAccess | None:
    """How ``viewer`` may open a message of mailbox ``mailbox_id``: as its owner, or from a
    record whose live list asks that mailbox for them. None: they may not (404)."""
    mailbox = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
    if mailbox is None:
        return None
    own = own_live_access(viewer, mailbox)
    if own is not None:
        return own
    if module is None or record_id is None:
        return None
    return next(
        (a for a in live_mailboxes(viewer, module, record_id) if a.mailbox.pk == mailbox_id),
        None,
    )


def shows_on_record(
    access: LiveAccess, module: str | None, record_id: int | None, addresses: Sequence[str]
) -> bool:
    """Whether a message with these From/To/Cc ``addresses`` may be shown through
    ``access``: a colleague's only when it is the record's mail (one of the record's
    addresses takes part) and not internal by their excluded domains."""
    if access.path == "own":
        return True
    if module is None or record_id is None:
        return False
    wanted = set(record_addresses(module, record_id))
    lowered = [a.lower() for a in addresses]
    return bool(wanted.intersection(lowered)) and access.shows(lowered)


@dataclass
class LiveReading:
    """A message opened live: its bytes (never stored) and what the parser read of them."""

    access: LiveAccess
    remote_id: str
    raw: bytes
    parsed: ParsedMessage | None  # None: the message could not be parsed
    received_at: datetime | None = None  # when the provider received it

    @property
    def date(self) -> datetime | None:
        """Its Date header, else when the provider received it."""
        return (self.parsed.date if self.parsed else None) or self.received_at


REMOTE_ID = re.compile(r"[A-Za-z0-9_=+.\-]{1,400}")


def open_message(
    viewer: User, mailbox_id: int, remote_id: str, module: str | None, record_id: int | None
) -> LiveReading | None:
    """A message of a mailbox keeping no copy, asked live, when ``viewer`` may see it (as
    stored mail: their own, or on a record they may view whose mail the owner shares with
    them); None otherwise, whether or not it exists. ``DriverError`` when the provider does
    not answer."""
    if not REMOTE_ID.fullmatch(remote_id):
        return None
    access = may_open(viewer, mailbox_id, module, record_id)
    if access is None:
        return None
    fetched = live.raw_message(access.mailbox, remote_id)
    if fetched is None or fetched.raw is None:
        return None
    raw = fetched.raw
    try:
        parsed: ParsedMessage | None = parse_message(raw)
    except Unparseable:
        parsed = None
    except Exception as exc:  # parse.py promises Unparseable only; never a 500 on a message
        log.warning("live message of mailbox %s: %s", mailbox_id, type(exc).__name__)
        parsed = None
    if access.path != "own":
        if parsed is None:
            return None  # whose mail it is cannot be told: a colleague's is not shown
        addresses = parsed.addresses("from", "to", "cc")
        if not shows_on_record(access, module, record_id, addresses):
            return None
    return LiveReading(access, remote_id, raw, parsed, fetched.internal_date)
