"""A record's Emails list as one viewer sees it (SPEC F4 views, on top of SPEC F5).

Everything starts from ``sharing.visibility``: a view is ``visible_through(viewer, module,
record_id, copies=…, sends=…)``, the record's list (``visible_messages``) through the
viewer's visible copies narrowed by the mailbox's protocol or owner, and through the sends
narrowed by the sender, or through one of those paths only. Threads are folded in SQL with
window functions, so a page is a few statements whatever the size of the record's
history. The web page and the API both read through here.

Views:

- ``all``: every message the viewer may see on the record;
- ``sent``: sent from crmail;
- ``dropbox``: received at a user's BCC Dropbox (SPEC F6);
- ``imap`` / ``pop``: with a copy the viewer may see in a mailbox synced over IMAP / POP3
  (mail sent from crmail is in them only through such a copy);
- ``user``: with a copy the viewer may see in one user's mailbox, or sent by that user
  from crmail.

A view matches through *visible copies* only (``sharing.visibility.visible_copies``): a
message the viewer sees for another reason (sent from crmail, a colleague's public copy)
must not show under a user who holds it privately, nor make that user a choice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber

from crmail.linking.models import Link
from crmail.linking.queries import explanations, record_links
from crmail.mail import tags
from crmail.mail.models import Message, Participant
from crmail.mailboxes.models import Protocol, Source
from crmail.people.models import User
from crmail.sharing.visibility import visible_through

VIEWS: dict[str, str] = {
    "all": "All",
    "sent": "Sent from crmail",
    "dropbox": "BCC Dropbox",
    "imap": "From IMAP mailboxes",
    "pop": "From POP mailboxes",
    "user": "By user",
}
# What the list needs of a message: never the body or the raw bytes.
LIST_FIELDS = (
    "id",
    "subject",
    "parse_state",
    "date",
    "from_address",
    "from_name",
    "snippet",
    "has_attachments",
    "automated",
    "list_id",
    "thread_id",
)


class BadView(ValueError):
    """A view or user that cannot be used; ``field`` names the parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _newest_first() -> list[object]:
    return [F("date").desc(nulls_last=True), F("pk").desc()]


def _view_paths(view: str, user_id: Any) -> tuple[Q | None, Q | None]:
    """The view as the paths ``visible_through`` takes: a condition on the visible copies
    (``Location``) and one on the sends (``SentMessage``); None: not through that path."""
    if view == "all":
        return Q(), Q()
    if view == "sent":
        return None, Q(source=Source.CRMAIL)
    if view == "dropbox":
        return None, Q(source=Source.DROPBOX)
    if view == "imap":
        return Q(mailbox__protocol=Protocol.IMAP), None
    if view == "pop":
        return Q(mailbox__protocol=Protocol.POP3), None
    if view == "user":
        return Q(mailbox__owner_id=user_id), Q(sender_id=user_id)
    raise BadView("view", f"Choose one of: {', '.join(VIEWS)} (not {view!r}).")


def check_view(view: str, user_id: int | None) -> None:
    """Raise ``BadView`` unless ``view`` (and ``user_id``) make a view."""
    if view not in VIEWS:
        raise BadView("view", f"Choose one of: {', '.join(VIEWS)} (not {view!r}).")
    if view == "user" and user_id is None:
        raise BadView("user", "Choose the user whose mail to show (view=user needs user).")
    if view != "user" and user_id is not None:
        raise BadView("user", "A user is chosen only with view=user.")
    if user_id is not None and not User.objects.filter(pk=user_id).exists():
        raise BadView("user", f"There is no user {user_id}.")


def record_emails(
    viewer: User,
    module: str,
    record_id: int,
    view: str = "all",
    user_id: int | None = None,
    tag: str | None = None,
) -> QuerySet[Message]:
    """The messages of one view of a record's Emails list, newest first (list fields only);
    only those tagged ``tag`` when given (the tag's messages: one index range).

    Empty when the viewer cannot view the record; ``BadView`` for an unknown view.
    """
    copies, sends = _view_paths(view, user_id)
    visible = visible_through(viewer, module, record_id, copies=copies, sends=sends)
    if tag is not None:
        visible = visible.filter(pk__in=tags.tagged(tag))
    return visible.only(*LIST_FIELDS).order_by(*_newest_first())


def thread_heads(messages: QuerySet[Message]) -> QuerySet[Message]:
    """One message per thread (its newest in ``messages``), newest thread first, each with
    ``thread_count``: how many of ``messages`` the thread holds. A message without a
    thread is a thread of its own."""
    thread = Coalesce(F("thread_id"), Value(0) - F("pk"))
    return (
        messages.annotate(
            thread_rank=Window(RowNumber(), partition_by=[thread], order_by=_newest_first()),
            thread_count=Window(Count("pk"), partition_by=[thread]),
        )
        .filter(thread_rank=1)
        .order_by(*_newest_first())
    )


def thread_messages(messages: QuerySet[Message], message: Message) -> QuerySet[Message]:
    """The messages of ``message``'s thread among ``messages``, newest first."""
    if message.thread_id is None:
        return messages.filter(pk=message.pk)
    return messages.filter(thread_id=message.thread_id)


def mail_users(viewer: User, module: str, record_id: int) -> QuerySet[User]:
    """The users whose mail the viewer sees on the record (a copy the viewer may see lies
    in their mailbox, or they sent it from crmail): the choices of the "by user" view."""
    copies, sends = _view_paths("user", OuterRef(OuterRef("pk")))  # the user of the row
    theirs = visible_through(viewer, module, record_id, copies=copies, sends=sends)
    return User.objects.filter(Exists(theirs)).order_by("name", "email")


# --- what a page of rows needs beside the messages (a fixed number of queries) -----------


@dataclass
class LinkReason:
    module: str
    record_id: int
    reason: str
    address: str
    explanation: str


@dataclass
class Extras:
    """Per message id: why it is on the record, its tags, and its recipients."""

    reasons: dict[int, list[LinkReason]] = field(default_factory=dict)
    to: dict[int, list[str]] = field(default_factory=dict)
    tags: dict[int, list[str]] = field(default_factory=dict)


def reasons_for(links: Sequence[Link], on: str | None) -> dict[int, list[LinkReason]]:
    """``links`` with their explanations (two queries at most), by message id."""
    found: dict[int, list[LinkReason]] = defaultdict(list)
    for link, words in zip(links, explanations(links, on), strict=True):
        reason = LinkReason(link.module, link.record_id, link.reason, link.address, words)
        if reason not in found[link.message_id]:
            found[link.message_id].append(reason)
    return dict(found)


def extras(
    module: str, record_id: int, message_ids: Iterable[int], *, recipients: bool = False
) -> Extras:
    """ "Linked because…" and the tags of messages on a record (and their To addresses,
    when asked)."""
    ids = list(message_ids)
    if not ids:
        return Extras()
    links = list(record_links(module, record_id).filter(message_id__in=ids))
    result = Extras(reasons=reasons_for(links, module), tags=tags.tags_of(ids))
    if recipients:
        to: dict[int, list[str]] = defaultdict(list)
        rows = Participant.objects.filter(message_id__in=ids, role="to").order_by(
            "message_id", "position"
        )
        for message_id, address in rows.values_list("message_id", "address"):
            to[message_id].append(address)
        result.to = dict(to)
    return result
