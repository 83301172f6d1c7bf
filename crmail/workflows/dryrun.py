"""Trying a rule on past mail before it is switched on: "would have matched 12 of the
last 500". Read-only: nothing is written, no action is done.

The mail tried is the newest ``LIMIT`` messages the rule's scope covers — a user's rule:
that user's mail (their mailboxes' copies and what they sent from crmail); the
organisation's: the mail of every active user. Each is checked as the rule would check
it as new mail (its triggers, as each owner holds it; the records the rule may see), except
that old mail counts (a real run leaves old mail alone). The matches listed are only those
the person trying may see (``sharing.visibility``): an administrator trying an
organisation's rule learns how many of the others' messages would match, not what they say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from crmail.mail.models import Message
from crmail.mailboxes.models import Location, SentMessage
from crmail.people.models import User
from crmail.sharing.visibility import visible_messages
from crmail.workflows import conditions, facts, scope
from crmail.workflows.conditions import RecordFacts
from crmail.workflows.spec import RuleSpec

LIMIT = 500
SHOWN = 20
CHUNK = 100


@dataclass(frozen=True)
class Shown:
    message_id: int
    subject: str
    from_address: str
    from_name: str
    date: datetime | None
    records: list[RecordFacts]


@dataclass
class DryRun:
    tried: int  # messages looked at
    matched: int
    shown: list[Shown] = field(default_factory=list)  # newest first, those one may see
    hidden: int = 0  # matches the person trying may not see

    @property
    def more(self) -> int:
        """Matches one may see beyond those listed."""
        return self.matched - self.hidden - len(self.shown)


def _scope(owner: User | None) -> Q:
    if owner is None:
        located = Location.objects.filter(mailbox__owner__is_active=True)
        sent = SentMessage.objects.filter(sender__is_active=True)
    else:
        located = Location.objects.filter(mailbox__owner_id=owner.pk)
        sent = SentMessage.objects.filter(sender_id=owner.pk)
    return Q(pk__in=located.values("message_id")) | Q(pk__in=sent.values("message_id"))


def try_rule(rule: RuleSpec, *, owner: User | None, viewer: User, limit: int = LIMIT) -> DryRun:
    """How ``rule`` (of ``owner``; None: the organisation's) would have met the newest
    ``limit`` messages it covers, as ``viewer`` may be shown it."""
    ids = list(
        Message.objects.filter(_scope(owner))
        .exclude(parse_state__in=("pending", "processing"))
        .order_by("-date", "-pk")
        .values_list("pk", flat=True)[:limit]
    )
    matched: list[int] = []
    found: dict[int, conditions.MessageFacts] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        held = scope.holders(chunk, fresh_only=False)
        loaded = facts.load(chunk)
        for pk in chunk:
            message_facts = loaded.get(pk)
            who = held.get(pk, {})
            if owner is not None:
                triggers = who.get(owner.pk, set())
            else:
                triggers = set().union(*who.values()) if who else set()
            if message_facts is None or not triggers & rule.triggers:
                continue
            records = facts.visible_to(owner, message_facts.records)
            if conditions.holds(rule, message_facts, records):
                matched.append(pk)
                message_facts.body = ""  # what is listed needs no body
                found[pk] = message_facts
    may_see = set(visible_messages(viewer).filter(pk__in=matched).values_list("pk", flat=True))
    result = DryRun(tried=len(ids), matched=len(matched), hidden=len(set(matched) - may_see))
    for pk in matched:
        if pk not in may_see:
            continue
        if len(result.shown) >= SHOWN:
            break
        item = found[pk]
        result.shown.append(
            Shown(
                message_id=pk,
                subject=item.subject,
                from_address=item.from_address,
                from_name=item.from_name,
                date=item.date,
                records=facts.visible_to(viewer, item.records),
            )
        )
    return result
