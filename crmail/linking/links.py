"""Writing links: new mail by its participants, past mail of new addresses, manual links.

Who calls what:
- the sync and sending paths call ``link_messages`` on each batch of parsed messages,
  after the parse has committed (and ``link_sent`` for mail sent from a record);
- the record events of ``crm.actions`` (``crmail.linking.receivers``) call
  ``link_past_mail``, ``unlink_addresses`` and ``unlink_record``;
- the UI and the API call ``link_to_record``, ``link_to_deal``, ``move_deal_link`` and
  ``unlink_from_record`` with the acting user.

Every writer is safe to run twice: links are unique on (message, module, record_id, reason,
address), and an existing link is skipped (ON CONFLICT DO NOTHING, ``ignore_conflicts``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from django.db import connections, router, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from crmail.crm.actions import NotAllowed
from crmail.crm.models import RECORD_MODELS, Deal, EmailAddress, Record
from crmail.events import outbox
from crmail.events.kinds import MessageLinked, MessageUnlinked
from crmail.linking.models import JobState, Link, LinkJob, Module, Reason
from crmail.mail.models import Message, Participant
from crmail.people import access
from crmail.people.models import User

log = logging.getLogger(__name__)

# Addresses in these headers link a message to a Lead or Contact (SPEC F4). Not Bcc (the
# sender's private choice, and only in the sender's copy), not Sender or Reply-To.
LINK_ROLES = ("from", "to", "cc")
PERSON_MODULES = (Module.LEADS, Module.CONTACTS)
# Ids or addresses per IN (...) list: under SQLite's and PostgreSQL's parameter limits.
CHUNK = 2000
# Participant rows per batch when linking past mail.
PAST_BATCH = 5000
# Past mail up to this many participant rows is linked at once, in the caller; more goes
# to a background job (``LinkJob``) whose progress the UI can show.
INLINE_LIMIT = 2000
# What a user may take back or move to another deal; address links follow the record's
# addresses, and mail sent from a record stays on it.
MOVABLE_REASONS = (Reason.MANUAL, Reason.BCC_DROPBOX, Reason.THREAD, Reason.WORKFLOW)

T = TypeVar("T")


class LinkError(Exception):
    """The link cannot be made or changed; the message says why in words."""


class AlreadyLinked(LinkError):
    """The message is already on that record."""


class SameDeal(LinkError):
    """A move to the deal the link is on."""


class NotLinked(LinkError):
    """The message is not on that record (as far as a user can take it back or move it)."""


class StaysLinked(LinkError):
    """Only links that mail sent from the record made: they stay (the mail was sent from it)."""


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _new_link(
    message_id: int,
    module: str,
    record_id: int,
    reason: str,
    date: datetime | None,
    now: datetime,
    address: str = "",
    created_by: User | None = None,
) -> Link:
    return Link(
        message_id=message_id,
        module=module,
        record_id=record_id,
        reason=reason,
        address=address,
        date=date,
        created_at=now,
        created_by=created_by,
    )


# --- New mail ---------------------------------------------------------------------------


def link_messages(message_ids: Iterable[int]) -> int:
    """Link parsed messages to every Lead and Contact with an address in From, To or Cc
    (a mailbox's own copy of mail sent through crmail is on records as that mail only).

    One statement per batch of ``CHUNK`` ids: the messages' participants are matched with
    ``crm.EmailAddress`` and the links inserted in the database (``_insert_address_links``);
    no row comes back to Python. Returns how many links were new. Messages not parsed yet
    have no participants and get no links: call again after parsing.
    """
    ids = list(dict.fromkeys(message_ids))
    count = 0
    for chunk in _chunks(ids, CHUNK):
        count += _insert_address_links("TRUE", [], of=list(chunk))
    return count


def _q(name: str) -> str:
    """``name`` quoted for the database links are written to."""
    return connections[router.db_for_write(Link)].ops.quote_name(name)


def _insert_address_links(where: str, params: list[object], of: list[int] | None = None) -> int:
    """INSERT … SELECT the address links of the participants that ``where`` picks (of the
    messages ``of`` only, when given).

    ``where`` is a condition on ``p`` (participants) and ``e`` (the matching addresses of
    Leads and Contacts), written by this module with every value a parameter. Links that
    exist already are skipped (ON CONFLICT DO NOTHING: SQLite 3.24+ and PostgreSQL).
    Messages ``of`` are a list of values the statement starts from: its size is known to
    the planner, so PostgreSQL without statistics yet (a first sync into a new database)
    does not take ``copy_of_id IS NULL`` for one row and walk the participants once per
    message (0.64 s a chunk at 4,000 messages).
    """
    connection = connections[router.db_for_write(Link)]
    q = connection.ops.quote_name
    link, participant = Link._meta, Participant._meta
    email, message = EmailAddress._meta, Message._meta
    now = Link._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    roles = ", ".join(["%s"] * len(LINK_ROLES))
    if of is None:
        start = (
            f"{q(participant.db_table)} p"
            f" JOIN {q(message.db_table)} m ON m.{q('id')} = p.{q('message_id')}"
        )
    else:
        # VALUES columns are column1, … on SQLite and PostgreSQL alike.
        start = (
            f"(VALUES {', '.join(['(%s)'] * len(of))}) AS ids"
            f" JOIN {q(message.db_table)} m ON m.{q('id')} = ids.column1"
            f" JOIN {q(participant.db_table)} p ON p.{q('message_id')} = ids.column1"
        )
    contact_id, lead_id = q("contact_id"), q("lead_id")
    # Identifiers come from the models, quoted; every value is a parameter.
    sql = f"""
        INSERT INTO {q(link.db_table)}
            ({q("message_id")}, {q("module")}, {q("record_id")}, {q("reason")},
             {q("address")}, {q("date")}, {q("created_at")})
        SELECT DISTINCT p.{q("message_id")},
            CASE WHEN e.{contact_id} IS NULL THEN %s ELSE %s END,
            COALESCE(e.{contact_id}, e.{lead_id}), %s, p.{q("address")}, m.{q("date")}, %s
        FROM {start}
        JOIN {q(email.db_table)} e ON e.{q("address")} = p.{q("address")}
        WHERE p.{q("role")} IN ({roles}) AND m.{q("copy_of_id")} IS NULL AND {where}
        ON CONFLICT DO NOTHING
        RETURNING {q("message_id")}, {q("module")}, {q("record_id")}
    """  # noqa: S608
    values = [
        Module.LEADS.value,
        Module.CONTACTS.value,
        Reason.ADDRESS.value,
        now,
        *(of or []),
        *LINK_ROLES,
        *params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        made = cursor.fetchall()
    outbox.record_many(
        [
            MessageLinked(message_id=m, module=module, record_id=r, reason=Reason.ADDRESS.value)
            for m, module, r in made
        ]
    )
    return len(made)


def unlink_copies(message_ids: Iterable[int]) -> int:
    """Take the address links off messages found to be a mailbox's own copy of mail sent
    through crmail (``Message.copy_of``): the record shows the message once, as sent."""
    ids = list(message_ids)
    return _unlinked(Link.objects.filter(message_id__in=ids, reason=Reason.ADDRESS)) if ids else 0


def _linked(links: Iterable[Link], actor: User | None = None) -> None:
    """Record ``message.linked`` for links just written."""
    outbox.record_many(
        [
            MessageLinked(
                message_id=link.message_id,
                module=link.module,
                record_id=link.record_id,
                reason=link.reason,
                actor_id=actor.pk if actor is not None else None,
            )
            for link in links
        ]
    )


def _unlinked(rows: QuerySet[Link], actor: User | None = None) -> int:
    """Delete ``rows``, recording ``message.unlinked`` once per message and record that
    lost its last link; the number of rows deleted."""
    pairs = set(rows.values_list("message_id", "module", "record_id"))
    deleted, _ = rows.delete()
    if pairs:
        still = set(
            Link.objects.filter(message_id__in={m for m, _, _ in pairs}).values_list(
                "message_id", "module", "record_id"
            )
        )
        outbox.record_many(
            [
                MessageUnlinked(
                    message_id=m,
                    module=module,
                    record_id=r,
                    actor_id=actor.pk if actor is not None else None,
                )
                for m, module, r in sorted(pairs - still)
            ]
        )
    return deleted


def link_sent(message: Message, module: str, record_id: int | None, user: User | None) -> None:
    """Link mail sent from crmail to the record it was sent from (``module`` may be empty:
    sent from the inbox). Its address links come with parsing, like synced mail's.
    """
    if module:
        if module not in Module.values or record_id is None:
            raise ValueError(f"Cannot link sent mail to {module!r} {record_id!r}.")
        date = Message.objects.filter(pk=message.pk).values_list("date", flat=True).first()
        link = _new_link(
            message.pk,
            module,
            record_id,
            Reason.SENT_FROM_RECORD,
            date,
            timezone.now(),
            created_by=user,
        )
        Link.objects.bulk_create([link], ignore_conflicts=True)
        _linked([link], user)


def link_answer(message: Message, original: Message, user: User) -> None:
    """Link a reply or forward sent from crmail to every record its original is on that
    ``user`` may view (reason: same thread)."""
    on = set(Link.objects.filter(message=original).values_list("module", "record_id"))
    date = Message.objects.filter(pk=message.pk).values_list("date", flat=True).first()
    now = timezone.now()
    links = []
    for module in {m for m, _ in on}:
        ids = [r for m, r in on if m == module]
        visible = access.visible(user, RECORD_MODELS[module]).filter(pk__in=ids)
        for record_id in visible.values_list("pk", flat=True):
            links.append(
                _new_link(message.pk, module, record_id, Reason.THREAD, date, now, created_by=user)
            )
    Link.objects.bulk_create(links, ignore_conflicts=True)
    _linked(links, user)


# --- Past mail of a record's addresses ---------------------------------------------------


def record_addresses(module: str, record_id: int) -> set[str]:
    """The addresses a Lead or Contact has now."""
    field = "contact_id" if module == Module.CONTACTS else "lead_id"
    return set(EmailAddress.objects.filter(**{field: record_id}).values_list("address", flat=True))


def _past_mail(addresses: Iterable[str]) -> QuerySet[Participant]:
    return Participant.objects.filter(address__in=list(addresses), role__in=LINK_ROLES)


def link_past_mail(module: str, record_id: int, addresses: Iterable[str]) -> LinkJob | None:
    """Link the mail already stored with ``addresses`` to a Lead or Contact.

    Addresses the record no longer has are skipped. Little mail is linked at once, here;
    more (over ``INLINE_LIMIT`` participant rows) is left to a background job, returned so
    the caller can show its progress.
    """
    if module not in PERSON_MODULES:
        raise ValueError(f"Only leads and contacts are linked by address, not {module!r}.")
    wanted = sorted(set(addresses) & record_addresses(module, record_id))
    if not wanted:
        return None
    total = _past_mail(wanted).count()
    if total <= INLINE_LIMIT:
        _link_past_batch(module, record_id, wanted, after=0, limit=None)
        # An address removed while the insert ran: its own event may have come too early.
        unlink_addresses(module, record_id, set(wanted) - record_addresses(module, record_id))
        return None
    job = LinkJob.objects.create(module=module, record_id=record_id, addresses=wanted, total=total)
    from crmail.linking.tasks import link_past_mail_job

    transaction.on_commit(lambda: link_past_mail_job(job.pk))
    return job


def _link_past_batch(
    module: str, record_id: int, addresses: Sequence[str], after: int, limit: int | None
) -> tuple[int, int]:
    """Link the participants after id ``after`` (up to ``limit``); (last id, rows seen).

    One indexed query on ``Participant.address`` finds the batch's id range, one INSERT …
    SELECT writes it. The insert joins the record's addresses as they are at that moment,
    so an address removed meanwhile links nothing.
    """
    found = _past_mail(addresses).filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)
    ids = list(found[:limit] if limit is not None else found)
    if not ids:
        return after, 0
    owner = _q("contact_id" if module == Module.CONTACTS else "lead_id")
    where = f"p.{_q('id')} > %s AND p.{_q('id')} <= %s AND e.{owner} = %s"
    _insert_address_links(where, [after, ids[-1], record_id])
    return ids[-1], len(ids)


def run_link_job(job_id: int) -> LinkJob | None:
    """Work through a ``LinkJob`` in batches, recording progress; resumes from its cursor.

    Before each batch the record's addresses are read again: an address removed meanwhile
    is dropped from the job (and what it linked is removed again), and when none is left
    the job is cancelled.
    """
    job = LinkJob.objects.filter(pk=job_id).first()
    if job is None or job.state in (JobState.DONE, JobState.CANCELLED):
        return job
    LinkJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING)
    try:
        while True:
            current = record_addresses(job.module, job.record_id)
            gone = set(job.addresses) - current
            if gone:
                unlink_addresses(job.module, job.record_id, gone)
                job.addresses = sorted(set(job.addresses) & current)
                LinkJob.objects.filter(pk=job.pk).update(addresses=job.addresses)
            if not job.addresses:
                _finish(job, JobState.CANCELLED)
                break
            last, seen = _link_past_batch(
                job.module, job.record_id, job.addresses, after=job.cursor, limit=PAST_BATCH
            )
            if not seen:
                _finish(job, JobState.DONE)
                break
            job.cursor = last
            LinkJob.objects.filter(pk=job.pk).update(cursor=last, done=F("done") + seen)
    except Exception as exc:
        LinkJob.objects.filter(pk=job.pk).update(
            state=JobState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        log.exception("linking past mail of %s %s failed", job.module, job.record_id)
        raise
    job.refresh_from_db()
    return job


def _finish(job: LinkJob, state: str) -> None:
    LinkJob.objects.filter(pk=job.pk).update(
        state=state,
        finished_at=timezone.now(),
        done=F("total") if state == JobState.DONE else F("done"),
    )


def link_progress(module: str, record_id: int) -> LinkJob | None:
    """The latest background linking of this record's past mail, if any."""
    return LinkJob.objects.filter(module=module, record_id=record_id).first()


def unlink_addresses(module: str, record_id: int, addresses: Iterable[str]) -> int:
    """Remove the links that these addresses (and only they) made to the record.

    A message that also carries another of the record's addresses keeps that link, and
    links of other reasons (manual, sent from the record) stay. Returns rows deleted.
    """
    addresses = list(addresses)
    if not addresses:
        return 0
    return _unlinked(
        Link.objects.filter(
            module=module, record_id=record_id, reason=Reason.ADDRESS, address__in=addresses
        )
    )


def unlink_record(module: str, record_id: int) -> int:
    """Remove every link of a deleted record, and stop its background linking."""
    LinkJob.objects.filter(
        module=module, record_id=record_id, state__in=[JobState.QUEUED, JobState.RUNNING]
    ).update(state=JobState.CANCELLED, finished_at=timezone.now())
    deleted, _ = Link.objects.filter(module=module, record_id=record_id).delete()
    return deleted


def relink_record(module: str, record_id: int) -> LinkJob | None:
    """Make a Lead's or Contact's address links agree with its addresses now (repair).

    For writes that bypass ``crm.actions`` (the Django admin, a shell): links of addresses
    the record lost are removed, and past mail of all its addresses is linked.
    """
    current = record_addresses(module, record_id)
    stale = (
        Link.objects.filter(module=module, record_id=record_id, reason=Reason.ADDRESS)
        .exclude(address__in=current)
        .values_list("address", flat=True)
        .distinct()
    )
    unlink_addresses(module, record_id, list(stale))
    return link_past_mail(module, record_id, current)


# --- Links users make --------------------------------------------------------------------


def _check_may_edit(user: User, record: Record) -> None:
    if not access.can(user, record, "view"):
        raise NotAllowed(f"No such {record._meta.verbose_name}.")
    if not access.can(user, record, "edit"):
        raise NotAllowed(f"You may not change the mail of {record}.")


def link_to_record(user: User, message: Message, record: Record) -> Link:
    """Link ``message`` to ``record`` by hand (any module). The user must edit the record.

    Whether ``user`` may see ``message`` is the caller's check (the sharing layer).
    """
    _check_may_edit(user, record)
    return _link_once(message, record.MODULE, record.pk, Reason.MANUAL, user)[0]


def link_dropbox(message: Message, module: str, record_id: int, user: User) -> bool:
    """Link mail that reached ``user``'s BCC Dropbox to the record it was filed on
    (reason "BCC dropbox", SPEC F6). True when the link is new."""
    return _link_once(message, module, record_id, Reason.BCC_DROPBOX, user)[1]


def link_by_rule(message: Message, record: Record, actor: User | None) -> bool:
    """Link ``message`` to ``record`` for a workflow rule (reason "workflow"); ``actor``:
    the rule's owner, None for an organisation's rule. Whether the rule may is the
    caller's check. True when the link is new."""
    return _link_once(message, record.MODULE, record.pk, Reason.WORKFLOW, actor)[1]


def _link_once(
    message: Message, module: str, record_id: int, reason: str, actor: User | None
) -> tuple[Link, bool]:
    """The link of ``message`` to the record for ``reason``, made (and recorded as an
    event) unless it exists; (link, whether new)."""
    link, created = Link.objects.get_or_create(
        message=message,
        module=module,
        record_id=record_id,
        reason=reason,
        address="",
        defaults={"date": message.date, "created_at": timezone.now(), "created_by": actor},
    )
    if created:
        _linked([link], actor)
    return link, created


def link_to_deal(user: User, message: Message, deal: Deal) -> Link:
    """Link synced mail to a deal (it is never linked to deals by itself, SPEC F4)."""
    return link_to_record(user, message, deal)


def unlink_from_record(user: User, message: Message, record: Record) -> int:
    """Remove the links a user can take back: manual, BCC dropbox and thread links.

    Address links follow the record's addresses, and mail sent from the record stays on it.
    """
    _check_may_edit(user, record)
    return _unlinked(
        Link.objects.filter(
            message=message,
            module=record.MODULE,
            record_id=record.pk,
            reason__in=MOVABLE_REASONS,
        ),
        user,
    )


def move_deal_link(user: User, message: Message, from_deal: Deal, to_deal: Deal) -> Link:
    """Move a message's link from one deal to another, as ``user`` (who edits both).

    Manual, BCC dropbox and thread links move and become the user's manual link to
    ``to_deal``. Refused, saying why: a move to the same deal (``SameDeal``), from a deal
    the message is not on (``NotLinked``), of mail sent from ``from_deal`` (that link
    stays: ``StaysLinked``, link the message to the other deal as well instead), or onto a
    deal the message is already on (``AlreadyLinked``: unlink it instead).
    """
    _check_may_edit(user, from_deal)
    _check_may_edit(user, to_deal)
    if from_deal.pk == to_deal.pk:
        raise SameDeal(f"This message is already on the deal {to_deal}: choose another deal.")
    on_deals = Link.objects.filter(message=message, module=Module.DEALS)
    current = on_deals.filter(record_id=from_deal.pk)
    reasons = set(current.values_list("reason", flat=True))
    if not reasons:
        raise NotLinked(f"This message is not linked to the deal {from_deal}.")
    if not reasons & set(MOVABLE_REASONS):
        raise StaysLinked(
            f"This message was sent from the deal {from_deal} in crmail, so it stays linked "
            "there; link it to the other deal as well instead."
        )
    if on_deals.filter(record_id=to_deal.pk).exists():
        raise AlreadyLinked(
            f"This message is already linked to the deal {to_deal}; unlink it from "
            f"{from_deal} instead."
        )
    with transaction.atomic():
        _unlinked(current.filter(reason__in=MOVABLE_REASONS), user)
        link = _link_once(message, Module.DEALS, to_deal.pk, Reason.MANUAL, user)[0]
    return link
