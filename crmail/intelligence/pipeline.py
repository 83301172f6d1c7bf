"""Computing email intelligence (SPEC F15, decision 061): messages in, ``Result`` rows out.

Runs in the job queue, never in the sync: the ``intelligence`` consumer of the outbox
reads ``message.processed`` after linking and queues ``analyse_messages`` with the ids (a job
of its own, in batches). Safe to run twice: a message's result is written over.

Which messages: mail received (a copy in a mailbox) and mail sent from crmail, parsed,
with its body; not BCC Dropbox mail (``SentMessage.source``), nor a mailbox's own copy of
a message sent through crmail (``copy_of``: the message itself has its result). A message
whose body waits (``mail.WaitingBody``) or is not parsed yet is left; it is parsed again
when its body comes, and its ``message.processed`` brings it back here.

A long thread (``LONG_THREAD`` messages or ``LONG_TEXT`` characters up to the message) gets
the thread's summary as of that message; ``summary_of`` keeps which messages it was read
from, so that it is shown only to a viewer who may open every one of them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime, time
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from crmail.crm.models import Contact
from crmail.intelligence import analysis, switch
from crmail.intelligence.analysis import Analysis, MailText
from crmail.intelligence.models import Result
from crmail.mail.models import Message, ParseState, WaitingBody
from crmail.mailboxes.models import SentMessage, Source

log = logging.getLogger(__name__)

BATCH = 50  # messages analysed together
LONG_THREAD = 4  # messages in a thread (up to the message) that make it long
LONG_TEXT = 6000  # characters of a thread (up to the message) that make it long
THREAD_LIMIT = 50  # the newest messages of a thread a summary is read from


def eligible(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Of ``messages``, those crmail analyses now: parsed with their body, not BCC Dropbox
    mail, not a mailbox's own copy of mail sent through crmail."""
    dropbox = SentMessage.objects.filter(message_id=OuterRef("pk"), source=Source.DROPBOX)
    waiting = WaitingBody.objects.filter(message_id=OuterRef("pk"))
    return (
        messages.filter(parse_state__in=[ParseState.PARSED, ParseState.PARTIAL])
        .filter(copy_of__isnull=True)
        .exclude(Exists(dropbox))
        .exclude(Exists(waiting))
    )


def is_dropbox_mail(message_id: int) -> bool:
    return SentMessage.objects.filter(message_id=message_id, source=Source.DROPBOX).exists()


@functools.cache
def _version(tier: str) -> str:
    return analysis.analyse([MailText(subject="", text="")], tier)[0].version  # type: ignore[arg-type]


def engine_version(tier: str) -> str:
    """The analysis's version for ``tier`` (what a new result would carry)."""
    return _version(tier)


def _time_zones(addresses: Iterable[str]) -> dict[str, str]:
    """The time zones of the contacts with these addresses (lower case), where known."""
    wanted = {a.lower() for a in addresses if a}
    rows = Contact.objects.filter(emails__address__in=wanted).exclude(time_zone="")
    return dict(rows.values_list("emails__address", "time_zone"))


def _mail_text(message: Message, zones: dict[str, str]) -> MailText:
    return MailText(
        subject=message.subject,
        text=message.body_text,
        date=message.sent_at or message.date,
        time_zone=zones.get(message.from_address.lower()),
        from_name=message.from_name,
        from_address=message.from_address,
    )


_SUMMARY_FIELDS = ("pk", "subject", "body_text", "date", "sent_at", "from_name", "from_address")


def _thread_windows(messages: Sequence[Message]) -> dict[int, list[Message]]:
    """For each of ``messages`` in a thread, the thread as of it: its ``THREAD_LIMIT``
    newest analysable messages up to it (itself included), oldest first. Read for the
    whole batch at once: each thread's ids and dates in one query, the rows of every
    window in one more, so a message shared by many windows is read once."""
    by_thread: dict[int, list[Message]] = {}
    for message in messages:
        if message.thread_id is not None and message.date is not None:
            by_thread.setdefault(message.thread_id, []).append(message)
    if not by_thread:
        return {}
    newest = max(m.date for ms in by_thread.values() for m in ms)  # type: ignore[type-var]
    members: dict[int, list[tuple[datetime, int]]] = {}
    rows = (
        eligible(Message.objects.filter(thread_id__in=list(by_thread)))
        .filter(date__isnull=False, date__lte=newest)
        .values_list("thread_id", "date", "pk")
    )
    for thread_id, when, pk in rows:
        if when is not None and thread_id is not None:  # the query's own conditions
            members.setdefault(thread_id, []).append((when, pk))
    wanted: dict[int, list[int]] = {}
    for thread_id, own in by_thread.items():
        ordered = sorted(members.get(thread_id, []))
        for message in own:
            upto = [pk for when, pk in ordered if (when, pk) <= (message.date, message.pk)]
            wanted[message.pk] = upto[-THREAD_LIMIT:]
    needed = {pk for pks in wanted.values() for pk in pks} - {m.pk for m in messages}
    loaded = {m.pk: m for m in messages}
    ids = sorted(needed)
    for start in range(0, len(ids), 1000):
        loaded.update(Message.objects.only(*_SUMMARY_FIELDS).in_bulk(ids[start : start + 1000]))
    windows: dict[int, list[Message]] = {}
    for message_pk, pks in wanted.items():
        window = [loaded[pk] for pk in pks if pk in loaded]
        if message_pk not in pks:
            window.append(loaded[message_pk])
        windows[message_pk] = window
    return windows


def _summary(thread: list[Message], zones: dict[str, str]) -> tuple[str, list[int]]:
    """The summary of ``thread`` (a message's window, ``_thread_windows``) and the ids it
    was read from, when the thread is long by then; else ("", [])."""
    length = sum(len(m.body_text) for m in thread)
    if len(thread) < LONG_THREAD and length < LONG_TEXT:
        return "", []
    text = analysis.summarise([_mail_text(m, zones) for m in thread])
    return text, [m.pk for m in thread]


def _signature(found: Analysis) -> dict[str, Any] | None:
    if found.signature is None or found.signature.is_empty():
        return None
    data = asdict(found.signature)
    data["phones"] = list(found.signature.phones)
    return data


def _meetings(found: Analysis) -> list[dict[str, Any]]:
    return [
        {"start": m.start.isoformat(), "text": m.text, "approximate": m.approximate}
        for m in found.meetings
    ]


def analyse_messages(message_ids: Sequence[int], *, force: bool = False) -> int:
    """Compute (again) the results of these messages, in batches; the number written.
    Without ``force`` a message whose result is of the analysis's version is left."""
    if not message_ids or not switch.enabled():
        return 0
    tier = switch.state().tier
    version = engine_version(tier)
    written = 0
    ids = sorted(set(message_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        rows = eligible(Message.objects.filter(pk__in=chunk))
        if not force:
            rows = rows.exclude(intelligence__version=version, intelligence__tier=tier)
        messages = list(rows.order_by("pk"))
        if not messages:
            continue
        zones = _time_zones(m.from_address for m in messages)
        pairs = _analysed(messages, zones, tier)
        windows = _thread_windows(messages)
        now = timezone.now()
        with transaction.atomic():
            for message, result in pairs:
                summary, sources = _summary(windows.get(message.pk, []), zones)
                Result.objects.update_or_create(
                    message_id=message.pk,
                    defaults={
                        "sentiment": result.sentiment,
                        "sentiment_score": max(-1.0, min(1.0, float(result.sentiment_score))),
                        "intent": result.intent,
                        "summary": summary,
                        "summary_of": sources,
                        "reply_text": result.reply_text,
                        "signature": _signature(result),
                        "meetings": _meetings(result),
                        "language": result.language[:8],
                        "tier": result.tier or tier,
                        "version": result.version[:40],
                        "computed_at": now,
                    },
                )
                written += 1
    return written


def _analysed(
    messages: list[Message], zones: dict[str, str], tier: str
) -> list[tuple[Message, Analysis]]:
    """The batch analysed together; should the analysis fail on it, each message alone,
    leaving out (and logging, without its text) one it fails on: one odd message never
    holds up the others, nor makes the job fail again and again."""
    texts = [_mail_text(m, zones) for m in messages]
    try:
        return list(zip(messages, analysis.analyse(texts, tier), strict=True))  # type: ignore[arg-type]
    except Exception:
        if len(messages) == 1:
            log.exception("intelligence: the analysis failed on message %s", messages[0].pk)
            return []
    found: list[tuple[Message, Analysis]] = []
    for message in messages:
        found += _analysed([message], zones, tier)
    return found


def _current() -> Exists:
    """Whether a message (``OuterRef("pk")``) has a result of the analysis version and
    tier that run now."""
    tier = switch.state().tier
    return Exists(
        Result.objects.filter(message_id=OuterRef("pk"), version=engine_version(tier), tier=tier)
    )


def stale_ids(since: date | None = None) -> list[int]:
    """The messages ``rerun`` computes: eligible ones (dated on or after ``since``)
    without a result, or with one of another version or tier than the analysis's now."""
    rows = eligible(Message.objects.all())
    if since is not None:
        rows = rows.filter(date__gte=timezone.make_aware(datetime.combine(since, time.min)))
    return list(rows.exclude(_current()).order_by("pk").values_list("pk", flat=True))


# ``outdated_count`` counts this far (and one more, to say "more than").
OUTDATED_LIMIT = 10_000


def outdated_count(limit: int | None = None) -> int:
    """How many messages have a result of another analysis version or tier than the one
    that runs now (after an upgrade, say): ``rerun`` computes them again. Messages
    without a result yet are not counted (new mail waiting for its analysis). Counting
    stops at ``limit`` + 1 (default ``OUTDATED_LIMIT``): after an upgrade every result of
    a large store is outdated, and each is checked for whether it is still analysed."""
    limit = OUTDATED_LIMIT if limit is None else limit
    rows = eligible(Message.objects.filter(intelligence__isnull=False)).exclude(_current())
    return rows[: limit + 1].count()


def missing_ids(since: datetime, limit: int = 2000) -> list[int]:
    """Eligible messages first seen since ``since`` without any result (what a lost job
    left): the periodic sweep computes them."""
    rows = eligible(Message.objects.filter(first_seen_at__gte=since)).filter(
        intelligence__isnull=True
    )
    return list(rows.order_by("pk").values_list("pk", flat=True)[:limit])


def rerun(since: date | None = None) -> int:
    """Compute again every result that is missing or of another analysis version (after
    a model change); the number written."""
    if not switch.enabled():
        return 0
    ids = stale_ids(since)
    written = 0
    for start in range(0, len(ids), BATCH * 20):
        written += analyse_messages(ids[start : start + BATCH * 20], force=True)
    log.info("intelligence: %s results computed again", written)
    return written
