"""Bodies that wait (SPEC F11, decision 058): mail that arrived while the organisation's
storage was full kept its headers, participants, thread and links, and its body stayed on
the mail server (``mail.WaitingBody``). Here it is fetched again, from a folder of a
mailbox holding it, checked against the hash the message is known by, stored, counted and
parsed again with its body:

- ``fetch_while_room``: the oldest first, while usage is below the quota (a job, every
  few minutes and when the quota grows);
- ``fetch_now``: one message, when someone who may see it asks (its page offers it),
  whatever room is left: a person asked for it, and nothing is deleted to make room.

Nothing is ever deleted to make room, and a server that no longer has the message leaves
it waiting, said in words.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from crmail.mail.ingest import parse_stored
from crmail.mail.models import Message, WaitingBody
from crmail.mail.store import NotTheSameMessage, store_bodies
from crmail.mailboxes import quota, usage
from crmail.mailboxes.connect import open_driver
from crmail.mailboxes.drivers.base import DriverError, RemoteFolder
from crmail.mailboxes.models import Location

log = logging.getLogger(__name__)

# Bodies fetched by one run of the job at most.
JOB_LIMIT = 500


@dataclass
class Fetched:
    """What a fetch did: bodies stored, and why others were not, in words."""

    stored: int = 0
    problems: list[str] = field(default_factory=list)


def waiting_count() -> int:
    return WaitingBody.objects.count()


def fetch_now(message_id: int) -> Fetched:
    """Fetch the body of ``message_id`` at once, whatever room is left (someone asked)."""
    done = _fetch([message_id])
    nothing = not done.stored and not done.problems
    if nothing and WaitingBody.objects.filter(message_id=message_id).exists():
        done.problems.append(_NOWHERE)
    return done


def fetch_while_room(limit: int = JOB_LIMIT) -> Fetched:
    """Fetch waiting bodies, oldest first, while the organisation's usage is below its
    quota (the last one fetched may cross it, as the last mail stored whole does)."""
    room = quota.total_bytes() - usage.organisation_bytes()
    chosen: list[int] = []
    rows = WaitingBody.objects.order_by("since", "message_id").values_list(
        "message_id", "message__size"
    )
    for message_id, size in rows[:limit]:
        if room <= 0:  # full once the quota is reached, as when mail arrives
            break
        room -= size
        chosen.append(message_id)
    return _fetch(chosen) if chosen else Fetched()


_NOWHERE = "No mailbox that keeps a copy holds this message any more: its body cannot be fetched."


def _fetch(message_ids: list[int]) -> Fetched:
    """Fetch and store the bodies of ``message_ids`` (those still waiting), a mailbox at a
    time, a folder at a time; then parse them again."""
    done = Fetched()
    places = (
        Location.objects.filter(
            message_id__in=message_ids,
            message__waiting_body__isnull=False,
            mailbox__keeps_copy=True,
            folder__exists_on_server=True,
        )
        .select_related("mailbox", "folder")
        .order_by("-mailbox__is_active", "mailbox_id", "folder_id", "pk")
    )
    by_mailbox: dict[int, list[Location]] = defaultdict(list)
    for location in places:
        by_mailbox[location.mailbox_id].append(location)
    left = set(message_ids)
    for locations in by_mailbox.values():
        wanted = [loc for loc in locations if loc.message_id in left]
        if not wanted:
            continue
        mailbox = wanted[0].mailbox
        try:
            bodies = _read(wanted)
        except DriverError as exc:
            done.problems.append(f"{mailbox.email}: {exc}")
            continue
        try:
            with transaction.atomic():
                stored = store_bodies(bodies)
                usage.bodies_stored(stored)
        except NotTheSameMessage as exc:
            done.problems.append(str(exc))
            continue
        left -= set(stored)
        done.stored += len(stored)
        if stored:
            parse_stored(list(Message.objects.filter(pk__in=stored)))
    return done


def _read(locations: list[Location]) -> dict[int, bytes]:
    """The raw bytes of the messages at ``locations`` (one mailbox's), from its server."""
    mailbox = locations[0].mailbox
    by_folder: dict[int, list[Location]] = defaultdict(list)
    for location in locations:
        by_folder[location.folder_id].append(location)
    bodies: dict[int, bytes] = {}
    driver = open_driver(mailbox)
    try:
        for rows in by_folder.values():
            folder = rows[0].folder
            remote = RemoteFolder(folder.remote_id, folder.name, folder.role or None)
            wanted = {loc.remote_id: loc.message_id for loc in rows if loc.message_id not in bodies}
            if not wanted:
                continue
            for message in driver.fetch(remote, list(wanted)):
                if message.raw is not None and message.remote_id in wanted:
                    bodies.setdefault(wanted[message.remote_id], message.raw)
    finally:
        driver.close()
    return bodies


def owners_waiting() -> dict[int, tuple[int, int]]:
    """{owner id: (messages whose body waits, the newest one's id)} over their mailboxes."""
    rows = (
        Location.objects.filter(message__waiting_body__isnull=False)
        .values_list("mailbox__owner_id", "message_id")
        .distinct()
    )
    out: dict[int, tuple[int, int]] = {}
    for owner_id, message_id in rows:
        n, newest = out.get(owner_id, (0, 0))
        out[owner_id] = (n + 1, max(newest, message_id))
    return out


def waiting_for_owner(owner_id: int) -> int:
    return (
        Location.objects.filter(mailbox__owner_id=owner_id, message__waiting_body__isnull=False)
        .values("message_id")
        .distinct()
        .count()
    )
