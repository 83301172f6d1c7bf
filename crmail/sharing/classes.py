"""Visibility classes: who may see a message, decided once per kind of message
(decision 063).

Whether a viewer may see a message (``sharing.visibility``) depends, besides the viewer,
on a few facts about the message: the mailboxes holding it (their owner, their protocol,
and whether the copy is internal for that owner by their excluded domains), who sent it
from crmail and how, and the owners of the records it is on (and of a linked contact's
account). Many messages share the same facts: a **class** (``VisibilityClass``), and
each message points at its own (``MessageClass``). A report over a million messages then
asks the rules once per class — a few thousand, in Python — instead of once per message
in SQL. Which records a custom sharer shared is a choice per record, not a class: that
path is always asked directly.

Database triggers (``sharing`` migration 0006) write a ``VisibilityChange`` for every
message whose facts a write may change, whoever writes; ``classify`` works those
messages' classes out again and deletes the changes it read. A message with a change
not yet classified is asked the rules directly, so the answer never depends on how far
``classify`` has got: classes make reports fast, never different.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import DatabaseError, connection, transaction

from crmail.crm.models import Account, Contact
from crmail.linking.models import Link, Module
from crmail.mail.models import Message
from crmail.mailboxes.models import Location, Mailbox, SentMessage
from crmail.people import access
from crmail.sharing.models import MessageClass, VisibilityChange, VisibilityClass

log = logging.getLogger(__name__)

BATCH = 2000  # changes read per transaction
TIDY_AFTER = 10 * BATCH  # changes read in one run after which both tables are vacuumed
GONE = -1  # the owner of a linked record that no longer exists


class Copy(NamedTuple):  # a tuple: tens of thousands are made when a process first looks
    mailbox: int
    owner: int
    protocol: str
    internal: bool  # for its owner, by their excluded domains


@dataclass(frozen=True)
class Kind:
    """The facts of a class: its messages' copies, sends from crmail (sender, source),
    direct links (module, the record's owner, ``GONE`` for a record that no longer
    exists) and the owners of the accounts of the contacts it is linked to."""

    copies: tuple[Copy, ...] = ()
    sends: tuple[tuple[int, str], ...] = ()
    links: tuple[tuple[str, int], ...] = ()
    accounts: tuple[int, ...] = ()

    def key(self) -> str:
        return json.dumps(
            [
                sorted([c.mailbox, c.owner, c.protocol, int(c.internal)] for c in self.copies),
                sorted(list(s) for s in self.sends),
                sorted(list(k) for k in self.links),
                sorted(self.accounts),
            ],
            separators=(",", ":"),
        )

    # Worked out once, as a kind is made: a report looks at every one of them
    # (``cached_property`` takes a lock on each first look: 0.5 s at 24,000 classes).
    holders: frozenset[int] = field(init=False, repr=False, compare=False)
    sharing: frozenset[int] = field(init=False, repr=False, compare=False)
    senders: frozenset[int] = field(init=False, repr=False, compare=False)
    modules: frozenset[str] = field(init=False, repr=False, compare=False)
    records: frozenset[tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        derived = {
            "holders": frozenset(c.owner for c in self.copies),
            # the holders whose copy is not internal for them: those whose public
            # sharing may let others see it
            "sharing": frozenset(c.owner for c in self.copies if not c.internal),
            "senders": frozenset(s for s, _ in self.sends),
            "modules": frozenset(m for m, _ in self.links),
            # (module, owner) of the records it is on that exist
            "records": frozenset(k for k in self.links if k[1] != GONE),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_key(cls, key: str) -> Kind:
        copies, sends, links, accounts = json.loads(key)
        return cls(
            tuple(Copy(m, o, p, bool(i)) for m, o, p, i in copies),
            tuple((s, src) for s, src in sends),
            tuple((module, owner) for module, owner in links),
            tuple(accounts),
        )


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- working classes out ---------------------------------------------------------------


def classify(limit: int | None = None) -> int:
    """Work out again the class of every message with a ``VisibilityChange`` (up to about
    ``limit`` changes), a batch per transaction; returns how many changes were read."""
    done = 0
    while limit is None or done < limit:
        read = _classify_batch()
        if not read:
            break
        done += read
    if done >= TIDY_AFTER and connection.vendor == "postgresql":
        _tidy()
    return done


def _tidy() -> None:
    """After a large run, on PostgreSQL: the drained log and the classes rewritten are
    dead rows every report reads past, and the planner's figures for both tables are
    far off (a drained log it still thought full made it scan every message for the
    pending part: 0.2 s a report at 20,000 messages). Autovacuum comes later, or never
    where it is switched off; so vacuum both tables now (outside a transaction; inside
    one, only renew their statistics)."""
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for model in (VisibilityChange, MessageClass):
            cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")


def pending() -> int:
    """How many changes wait for ``classify`` (a message may have several)."""
    return VisibilityChange.objects.count()


def _classify_batch() -> int:
    with transaction.atomic():
        if connection.vendor == "postgresql":  # one classifier at a time (SQLite: IMMEDIATE)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('crmail_classify'))")
        read = list(VisibilityChange.objects.order_by("pk").values_list("pk", "message_id")[:BATCH])
        if not read:
            return 0
        ids = sorted({message_id for _, message_id in read})
        # Every change of these messages, not only the batch's, read before their facts:
        # each is worked out once however many writes logged it (a bulk load logs a
        # message once per table: three times over, and as many dead class rows).
        changes = list(
            VisibilityChange.objects.filter(message_id__in=ids).values_list("pk", flat=True)
        )
        facts = {
            pk: (date, from_address)
            for pk, date, from_address in Message.objects.filter(pk__in=ids).values_list(
                "pk", "date", "from_address"
            )
        }
        kinds = kinds_of(sorted(facts))
        digests = {pk: digest(kind.key()) for pk, kind in kinds.items()}
        classes = _class_ids({digests[pk]: kind.key() for pk, kind in kinds.items()})
        MessageClass.objects.filter(message_id__in=[pk for pk in ids if pk not in kinds]).delete()
        MessageClass.objects.bulk_create(
            [
                MessageClass(
                    message_id=pk,
                    visibility_class_id=classes[digests[pk]],
                    date=date,
                    from_address=from_address.lower(),
                    sent=bool(kinds[pk].sends),
                )
                for pk, (date, from_address) in facts.items()
            ],
            update_conflicts=True,
            unique_fields=["message"],
            update_fields=["visibility_class", "date", "from_address", "sent"],
        )
        # The changes read, by their ids only: one written since waits for the next batch.
        VisibilityChange.objects.filter(pk__in=changes).delete()
        return len(changes)


def _class_ids(keys: dict[str, str]) -> dict[str, int]:
    """The class id of each digest (``keys``: digest → key), made where missing."""
    found = dict(VisibilityClass.objects.filter(digest__in=keys).values_list("digest", "pk"))
    missing = [VisibilityClass(digest=d, key=k) for d, k in keys.items() if d not in found]
    if missing:
        VisibilityClass.objects.bulk_create(missing, ignore_conflicts=True)
        found.update(
            VisibilityClass.objects.filter(digest__in=[c.digest for c in missing]).values_list(
                "digest", "pk"
            )
        )
    return found


def kinds_of(existing: Sequence[int]) -> dict[int, Kind]:
    """The facts of each of these messages, which exist (four queries, and one per module
    of their links)."""
    from crmail.sharing.visibility import MODELS, internal_sql

    copies: dict[int, list[Copy]] = {pk: [] for pk in existing}
    sends: dict[int, list[tuple[int, str]]] = {pk: [] for pk in existing}
    links: dict[int, list[tuple[str, int]]] = {pk: [] for pk in existing}
    accounts: dict[int, list[int]] = {pk: [] for pk in existing}
    q = connection.ops.quote_name
    ids = ", ".join(str(int(pk)) for pk in existing) or "NULL"
    internal = internal_sql("vl.message_id", "vb.owner_id", connection)
    location, mailbox = q(Location._meta.db_table), q(Mailbox._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT vl.message_id, vl.mailbox_id, vb.owner_id, vb.protocol,"  # noqa: S608
            f" CASE WHEN {internal} THEN 1 ELSE 0 END"
            f" FROM {location} vl JOIN {mailbox} vb ON vb.id = vl.mailbox_id"
            f" WHERE vl.message_id IN ({ids})"
        )
        for message_id, box, owner, protocol, is_internal in cursor.fetchall():
            copies[message_id].append(Copy(box, owner, protocol, bool(is_internal)))
    for message_id, sender, source in SentMessage.objects.filter(
        message_id__in=existing
    ).values_list("message_id", "sender_id", "source"):
        sends[message_id].append((sender, source))
    by_module: dict[str, list[tuple[int, int]]] = {}
    for message_id, module, record_id in Link.objects.filter(message_id__in=existing).values_list(
        "message_id", "module", "record_id"
    ):
        by_module.setdefault(module, []).append((message_id, record_id))
    for module, rows in by_module.items():
        owners = dict(
            MODELS[module]
            ._default_manager.filter(pk__in={r for _, r in rows})
            .values_list("pk", "owner_id")
        )
        for message_id, record_id in rows:
            links[message_id].append((module, owners.get(record_id, GONE)))
        if module == Module.CONTACTS:
            account_of = dict(
                Contact.objects.filter(
                    pk__in={r for _, r in rows}, account__isnull=False
                ).values_list("pk", "account_id")
            )
            account_owner = dict(
                Account.objects.filter(pk__in=set(account_of.values())).values_list(
                    "pk", "owner_id"
                )
            )
            for message_id, record_id in rows:
                if record_id in account_of:
                    accounts[message_id].append(account_owner[account_of[record_id]])
    return {
        pk: Kind(
            tuple(copies[pk]),
            tuple(sends[pk]),
            tuple(sorted(set(links[pk]))),
            tuple(sorted(set(accounts[pk]))),
        )
        for pk in existing
    }


# --- what a viewer sees through each class ---------------------------------------------


@dataclass(frozen=True)
class Through:
    """What a viewer sees a class's messages through: for reports by user, by source and
    by record type (the rules of ``visible_copies_anywhere`` and of linked records)."""

    users: frozenset[int]
    sources: frozenset[str]
    modules: frozenset[str]


class _Known:
    """The facts of every class read so far, by digest: a key never changes, so each
    look reads the ids and digests and decodes only the keys it has not seen (ids are
    not trusted across looks: a class made in a transaction rolled back is gone)."""

    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}
        self.lock = threading.Lock()

    def look(self) -> list[tuple[int, str, Kind]]:
        """Every class now: its id, digest and facts."""
        with self.lock:
            ids = dict(VisibilityClass.objects.values_list("pk", "digest"))
            new = [pk for pk, d in ids.items() if d not in self.kinds]
            if len(new) > len(ids) // 2:  # a process's first look: every key, one query
                batches = [VisibilityClass.objects.all()]
            else:
                batches = [
                    VisibilityClass.objects.filter(pk__in=new[start : start + 5000])
                    for start in range(0, len(new), 5000)
                ]
            for rows in batches:
                for d, key in rows.values_list("digest", "key"):
                    if d not in self.kinds:
                        self.kinds[d] = Kind.from_key(key)
            return [(pk, d, self.kinds[d]) for pk, d in ids.items() if d in self.kinds]


_known = _Known()

Rules = tuple[int, tuple[tuple[str, access.Reach | None], ...], frozenset[int]]


class _Seen:
    """What the viewers of the last few sets of rules see through each class, by digest:
    the answer for a class never changes for the same rules, so a report tests only the
    classes made since the last report under those rules (the CEO's 24,000 classes took
    0.3 s of Python per report)."""

    SIZE = 32  # sets of rules remembered (a few MB each at 24,000 classes)

    def __init__(self) -> None:
        self.by_rules: OrderedDict[Rules, dict[str, Through | None]] = OrderedDict()
        self.lock = threading.Lock()

    def of(self, rules: Rules) -> dict[str, Through | None]:
        with self.lock:
            seen = self.by_rules.setdefault(rules, {})
            self.by_rules.move_to_end(rules)  # the most recent last
            while len(self.by_rules) > self.SIZE:
                self.by_rules.popitem(last=False)
            return seen


_seen = _Seen()


def warm() -> threading.Thread:
    """Read and decode every class in a thread of its own, so that the process's first
    report does not (0.35 s at 24,000 classes); ``crmail serve`` starts it."""

    def run() -> None:
        try:
            _known.look()
        except DatabaseError:
            log.warning("The visibility classes were not read ahead; the first report will.")
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=run, name="crmail-classes", daemon=True)
    thread.start()
    return thread


def seen_through(
    viewer_id: int,
    reaches: dict[str, access.Reach | None],
    public: Iterable[int],
) -> dict[int, Through]:
    """The classes whose messages ``viewer_id`` sees by their class (their own mail, or on
    a record they may view and sent from crmail or held by a public sharer of theirs, not
    internal for that sharer), and what they see each through. The same rules as
    ``visibility._Overall``, less the custom path; each class tested once per set of
    rules (``_Seen``)."""
    public = frozenset(public)
    remembered = _seen.of((viewer_id, tuple(sorted(reaches.items())), public))
    found: dict[int, Through] = {}
    test: Callable[[Kind], Through | None] | None = None
    for pk, d, kind in _known.look():
        if d in remembered:
            seen = remembered[d]
        else:
            if test is None:
                test = _tester(viewer_id, reaches, public)
            seen = remembered[d] = test(kind)
        if seen is not None:
            found[pk] = seen
    return found


def _tester(
    viewer_id: int, reaches: dict[str, access.Reach | None], public: frozenset[int]
) -> Callable[[Kind], Through | None]:
    """What ``viewer_id`` sees a class's messages through, None for nothing: each test a
    set operation."""
    every = frozenset(m for m, r in reaches.items() if r is not None and r.every)
    owned = frozenset(
        (m, o) for m, r in reaches.items() if r is not None and not r.every for o in r.owners
    )
    accounts = reaches[Module.ACCOUNTS]
    account_owners = frozenset(accounts.owners) if accounts is not None else frozenset()
    made: dict[Through, Through] = {}  # equal answers shared: most classes give a few

    def test(kind: Kind) -> Through | None:
        accessible = (
            not every.isdisjoint(kind.modules)
            or not owned.isdisjoint(kind.links)
            or (
                accounts is not None
                and bool(kind.accounts)
                and (accounts.every or not account_owners.isdisjoint(kind.accounts))
            )
        )
        own = viewer_id in kind.holders or viewer_id in kind.senders
        shared = accessible and not public.isdisjoint(kind.sharing)
        if not (own or (accessible and kind.sends) or shared):
            return None
        copies = [
            c
            for c in kind.copies
            if c.owner == viewer_id or (shared and c.owner in public and not c.internal)
        ]
        through = Through(
            users=frozenset({c.owner for c in copies} | kind.senders),
            sources=frozenset({c.protocol for c in copies} | {src for _, src in kind.sends}),
            modules=frozenset(m for m, o in kind.records if m in every or (m, o) in owned),
        )
        return made.setdefault(through, through)

    return test
