"""Tags on messages: their names, the only writers of who holds which, and the lookups the
lists filter with (SPEC F13).

A tag is a name of 1 to 100 characters, trimmed, one line; "Quote" and "quote" are the
same tag (``Tag.key``), which keeps the spelling it was first given. Tagging is
idempotent: a message holds a tag once, however often it is tagged.

Who may tag is whoever may see the message (``sharing.visibility``, above this layer):
the pages and the API ask it before they call these writers; a workflow (``actor`` None)
tags the mail its rule matched.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from crmail.events import outbox
from crmail.events.kinds import MessageTagged, MessageUntagged
from crmail.mail.models import TAG_NAME_MAX, Message, MessageTag, Tag
from crmail.people.models import User
from crmail.text import text_problem

MAX_TAGS_AT_ONCE = 50


class TagInvalid(ValueError):
    """A tag name that cannot be used; the message says why."""


def key_of(name: str) -> str:
    """The name as tags are told apart: trimmed, case-folded."""
    return name.strip().casefold()


def clean_name(name: object) -> str:
    """``name`` trimmed, or ``TagInvalid`` saying what is wrong with it."""
    if not isinstance(name, str):
        raise TagInvalid("A tag is a name, written as text.")
    problem = text_problem(name)
    if problem:
        raise TagInvalid(problem)
    name = name.strip()
    if not name:
        raise TagInvalid("A tag needs a name.")
    if len(name) > TAG_NAME_MAX:
        raise TagInvalid(f"A tag is at most {TAG_NAME_MAX} characters.")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise TagInvalid("A tag is one line, without tabs or control characters.")
    return name


def clean_names(names: Iterable[object]) -> list[str]:
    """The names trimmed, each tag once (in the order given); ``TagInvalid`` for none, too
    many, or one that cannot be used."""
    out: dict[str, str] = {}
    for name in names:
        cleaned = clean_name(name)
        out.setdefault(key_of(cleaned), cleaned)
    if not out:
        raise TagInvalid("Name at least one tag.")
    if len(out) > MAX_TAGS_AT_ONCE:
        raise TagInvalid(f"Give at most {MAX_TAGS_AT_ONCE} tags at a time.")
    return list(out.values())


def find(name: str) -> Tag | None:
    """The tag called ``name`` (in any case), if there is one."""
    return Tag.objects.filter(key=key_of(name)).first()


def tagged(name: str) -> QuerySet[MessageTag]:
    """The ids of the messages holding the tag ``name``, as a subquery
    (``message_id`` values): one index range (tag, message)."""
    return MessageTag.objects.filter(tag__key=key_of(name)).values("message_id")


def tags_of(message_ids: Iterable[int]) -> dict[int, list[str]]:
    """{message id: its tags' names, in alphabetical order}, in one query."""
    ids = list(message_ids)
    out: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return {}
    rows = (
        MessageTag.objects.filter(message_id__in=ids)
        .order_by("tag__key")
        .values_list("message_id", "tag__name")
    )
    for message_id, name in rows:
        out[message_id].append(name)
    return dict(out)


def _tags(names: list[str]) -> list[Tag]:
    """The tags of these (cleaned) names, made when new; safe when two writers make one
    at once (the unique key decides, the second one reads the first one's row)."""
    keys = [key_of(n) for n in names]
    existing = {t.key for t in Tag.objects.filter(key__in=keys)}
    missing = [Tag(name=n, key=key_of(n)) for n in names if key_of(n) not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
    by_key = {t.key: t for t in Tag.objects.filter(key__in=keys)}
    return [by_key[k] for k in keys]


def tag_messages(
    message_ids: Iterable[int], names: Iterable[object], *, actor: User | None
) -> dict[int, list[str]]:
    """Put the tags ``names`` on each of the messages (made as needed); a message that holds
    a tag already keeps its one row. Answers {message id: the names newly put on it}, and
    records ``message.tagged`` for each message that got any."""
    cleaned = clean_names(names)
    ids = list(Message.objects.filter(pk__in=list(message_ids)).values_list("pk", flat=True))
    if not ids:
        return {}
    with transaction.atomic():
        tags = _tags(cleaned)
        held = set(
            MessageTag.objects.filter(message_id__in=ids, tag__in=tags).values_list(
                "message_id", "tag_id"
            )
        )
        new = [
            MessageTag(message_id=m, tag=t, added_by=actor)
            for m in ids
            for t in tags
            if (m, t.pk) not in held
        ]
        MessageTag.objects.bulk_create(new, ignore_conflicts=True)
        added: dict[int, list[str]] = defaultdict(list)
        for row in new:
            added[row.message_id].append(row.tag.name)
        outbox.record_many(
            [
                MessageTagged(message_id=m, tags=t, actor_id=actor.pk if actor else None)
                for m, t in added.items()
            ]
        )
    return dict(added)


def untag_messages(
    message_ids: Iterable[int], names: Iterable[object], *, actor: User | None
) -> dict[int, list[str]]:
    """Take the tags ``names`` off each of the messages. Answers {message id: the names
    taken off it} (a tag it did not hold is not named), and records ``message.untagged``
    for each message that lost any."""
    keys = [key_of(n) for n in clean_names(names)]
    with transaction.atomic():
        rows = list(
            MessageTag.objects.filter(message_id__in=list(message_ids), tag__key__in=keys)
            .select_related("tag")
            .order_by("message_id", "tag__key")
        )
        if not rows:
            return {}
        MessageTag.objects.filter(pk__in=[r.pk for r in rows]).delete()
        removed: dict[int, list[str]] = defaultdict(list)
        for row in rows:
            removed[row.message_id].append(row.tag.name)
        outbox.record_many(
            [
                MessageUntagged(message_id=m, tags=t, actor_id=actor.pk if actor else None)
                for m, t in removed.items()
            ]
        )
    return dict(removed)
